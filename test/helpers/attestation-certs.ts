import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AttestationCa {
  /** The root certificate, PEM (what an operator lists as a trusted attestation root). */
  rootPem: string;
  /** Issues a packed-attestation leaf certificate for an AAGUID: its key and chain (DER, leaf first). */
  issue(aaguid: string): { privateKey: KeyObject; chain: Uint8Array[] };
}

/**
 * An attestation certificate authority made with the openssl command: a P-256 root, and leaf
 * certificates shaped as WebAuthn §8.2.1 requires of packed attestation (OU "Authenticator
 * Attestation", CA:FALSE, the AAGUID in extension 1.3.6.1.4.1.45724.1.1.4). A vendor's CA in the
 * tests, or an attacker's: anyone can make one.
 */
export function attestationCa(name: string): AttestationCa {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-attestation-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const newKey = (file: string) => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file);
  newKey('root.key');
  run('req', '-x509', '-new', '-key', 'root.key', '-subj', `/C=SE/O=${name}/CN=${name} Attestation Root`, '-days', '3650', '-out', 'root.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  let serial = 0;
  return {
    rootPem,
    issue(aaguid: string) {
      const n = ++serial;
      newKey(`leaf${n}.key`);
      run('req', '-new', '-key', `leaf${n}.key`, '-subj', `/C=SE/O=${name}/OU=Authenticator Attestation/CN=${name} Key ${n}`, '-out', `leaf${n}.csr`);
      writeFileSync(join(dir, `leaf${n}.ext`), `basicConstraints=critical,CA:FALSE\n1.3.6.1.4.1.45724.1.1.4=DER:04:10:${aaguid.replace(/-/g, '').match(/../g)!.join(':')}\n`);
      run('x509', '-req', '-in', `leaf${n}.csr`, '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', String(1000 + n), '-days', '365', '-extfile', `leaf${n}.ext`, '-out', `leaf${n}.pem`);
      const leaf = new X509Certificate(readFileSync(join(dir, `leaf${n}.pem`)));
      return { privateKey: createPrivateKey(readFileSync(join(dir, `leaf${n}.key`))), chain: [new Uint8Array(leaf.raw)] };
    },
  };
}

