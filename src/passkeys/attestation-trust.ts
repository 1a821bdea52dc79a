import { X509Certificate } from 'node:crypto';

/** Whether a PEM text is an X.509 certificate node:crypto can read (realm settings: attestationRoots). */
export function isPemCertificate(pem: string): boolean {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) return false;
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

const withinValidity = (cert: X509Certificate, now: number) => Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);

/** `child` was signed by `issuer`, which is a CA. */
const issuedBy = (child: X509Certificate, issuer: X509Certificate) => issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);

/**
 * Whether an attestation statement's certificate chain (x5c: DER, attestation certificate first) leads
 * to one of the trusted roots (PEM): every certificate within its validity period, each signed by the
 * next, the last one a trusted root or signed by one. SimpleWebAuthn checks the attestation signature
 * against x5c[0] but, without trust anchors, not where x5c[0] comes from, and anyone can make a
 * certificate claiming any AAGUID: an AAGUID allow-list means something only with this check.
 */
export function chainLeadsToTrustedRoot(x5c: readonly Uint8Array[], rootsPem: readonly string[], now: number = Date.now()): boolean {
  if (x5c.length === 0 || rootsPem.length === 0) return false;
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = x5c.map((der) => new X509Certificate(Buffer.from(der)));
    roots = rootsPem.map((pem) => new X509Certificate(pem));
  } catch {
    return false;
  }
  if (!chain.every((cert) => withinValidity(cert, now))) return false;
  for (let i = 0; i + 1 < chain.length; i++) if (!issuedBy(chain[i]!, chain[i + 1]!)) return false;
  const last = chain[chain.length - 1]!;
  return roots.some((root) => withinValidity(root, now) && (root.fingerprint256 === last.fingerprint256 || issuedBy(last, root)));
}
