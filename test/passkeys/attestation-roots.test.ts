import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realmSettingsSchema } from '../../src/realms/settings.js';
import { attestationCa, type AttestationCa } from '../helpers/attestation-certs.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ALLOWED = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
const OTHER = 'ee882879-721c-4913-9775-3dfcce97072a';

/**
 * An AAGUID allow-list is only as good as the check that the attestation certificate comes from the
 * authenticator's maker: anyone can make a certificate chain claiming any AAGUID. Only a chain that
 * leads to one of the realm's trusted attestation roots passes.
 */
describe('attestation allow-list: the certificate chain must lead to a trusted root', () => {
  let server: TestServer;
  let userId: string;
  let vendor: AttestationCa;
  let attacker: AttestationCa;
  const rp = { rpId: 'localhost', origins: [] as string[], name: 'Latchkey' };
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer();
    rp.origins = [server.issuer];
    userId = (await server.services.users.create({ realmId: 'default', email: 'roots@example.test' })).id;
    vendor = attestationCa('Vendor');
    attacker = attestationCa('Attacker');
  });
  afterAll(async () => server?.close());

  async function register(authenticator: SoftAuthenticator, passkeys: Record<string, unknown>) {
    const settings = realmSettingsSchema.parse({ passkeys });
    const s = server.services.passkeys;
    const user = { id: userId, email: 'roots@example.test', name: null };
    const boundTo = `roots:${++n}`;
    const options = await s.registrationOptions({ realmId: 'default', settings, rp, user, boundTo, kind: 'security-key' });
    const response = await authenticator.createCredential(options, server.issuer);
    return s.verifyRegistration({ realmId: 'default', settings, rp, user, boundTo, kind: 'security-key', response });
  }

  const credentialCount = async () => Number((await server.services.db('webauthn_credentials').count({ n: '*' }).first())!.n);

  it('refuses a listed AAGUID whose attestation certificate anyone could have made (no trusted root), writing nothing', async () => {
    const before = await credentialCount();
    const forged = new SoftAuthenticator({ aaguid: ALLOWED, attestation: 'packed-x5c', attestationCertificate: attacker.issue(ALLOWED) });
    await expect(register(forged, { attestation: 'allowlist', aaguids: [ALLOWED] })).rejects.toMatchObject({ code: 'authenticator_not_allowed', status: 400 });
    expect(await credentialCount()).toBe(before);
  });

  it('refuses a chain made by another CA than the trusted roots', async () => {
    const before = await credentialCount();
    const forged = new SoftAuthenticator({ aaguid: ALLOWED, attestation: 'packed-x5c', attestationCertificate: attacker.issue(ALLOWED) });
    await expect(register(forged, { attestation: 'allowlist', aaguids: [ALLOWED], attestationRoots: [vendor.rootPem] })).rejects.toMatchObject({ code: 'authenticator_not_allowed' });
    expect(await credentialCount()).toBe(before);
    const events = await server.services.db('security_events').where({ type: 'passkey.attestation_rejected' });
    expect(events.length).toBeGreaterThanOrEqual(2);
  });

  it("accepts the maker's own chain for a listed AAGUID, and refuses it for an AAGUID not listed", async () => {
    const genuine = new SoftAuthenticator({ aaguid: ALLOWED, attestation: 'packed-x5c', attestationCertificate: vendor.issue(ALLOWED) });
    const row = await register(genuine, { attestation: 'allowlist', aaguids: [ALLOWED], attestationRoots: [vendor.rootPem] });
    expect(row.aaguid).toBe(ALLOWED);
    expect(row.attestationFormat).toBe('packed');
    const unlisted = new SoftAuthenticator({ aaguid: OTHER, attestation: 'packed-x5c', attestationCertificate: vendor.issue(OTHER) });
    await expect(register(unlisted, { attestation: 'allowlist', aaguids: [ALLOWED], attestationRoots: [vendor.rootPem] })).rejects.toMatchObject({ code: 'authenticator_not_allowed' });
  });

  it('names a trusted root that is not a PEM certificate in the settings error', () => {
    const result = realmSettingsSchema.safeParse({ passkeys: { attestation: 'allowlist', aaguids: [ALLOWED], attestationRoots: ['not a certificate'] } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('attestationRoots');
    expect(JSON.stringify(result.error?.issues)).toMatch(/PEM certificate/);
  });
});
