import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { realmSettingsSchema } from '../../src/realms/settings.js';

const ALLOWED = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';

describe('attestation policy', () => {
  let server: TestServer;
  let userId: string;
  const rp = { rpId: 'localhost', origins: [] as string[], name: 'Latchkey' };

  beforeAll(async () => {
    server = await startTestServer();
    rp.origins = [server.issuer];
    const created = await server.services.users.create({ realmId: 'default', email: 'att@example.test' });
    userId = created.id;
  });
  afterAll(async () => server?.close());

  async function register(authenticator: SoftAuthenticator, settings: ReturnType<typeof realmSettingsSchema.parse>, boundTo: string) {
    const s = server.services.passkeys;
    const user = { id: userId, email: 'att@example.test', name: null };
    const options = await s.registrationOptions({ realmId: 'default', settings, rp, user, boundTo, kind: 'security-key' });
    const response = await authenticator.createCredential(options, server.issuer);
    return { options, promise: s.verifyRegistration({ realmId: 'default', settings, rp, user, boundTo, kind: 'security-key', response }) };
  }

  it('accepts any authenticator by default (attestation "none")', async () => {
    const settings = realmSettingsSchema.parse({});
    const { options, promise } = await register(new SoftAuthenticator({ aaguid: ALLOWED }), settings, 'att:1');
    expect(options.attestation).toBe('none');
    const row = await promise;
    expect(row.aaguid).toBe(ALLOWED);
    expect(row.name).toMatch(/YubiKey/); // named from its AAGUID
  });

  for (const [label, attestation] of [['no attestation', 'none'], ['self attestation', 'packed-self']] as const) {
    it(`an allow-list refuses ${label}, even with a listed AAGUID, and writes nothing`, async () => {
      const settings = realmSettingsSchema.parse({ passkeys: { attestation: 'allowlist', aaguids: [ALLOWED] } });
      const before = await server.services.db('webauthn_credentials').count({ n: '*' }).first();
      const { options, promise } = await register(new SoftAuthenticator({ aaguid: ALLOWED, attestation }), settings, `att:${attestation}`);
      expect(options.attestation).toBe('direct');
      await expect(promise).rejects.toMatchObject({ code: 'authenticator_not_allowed' });
      const after = await server.services.db('webauthn_credentials').count({ n: '*' }).first();
      expect(Number(after!.n)).toBe(Number(before!.n));
      const events = await server.services.db('security_events').where({ type: 'passkey.attestation_rejected' });
      expect(events.length).toBeGreaterThanOrEqual(1);
    });
  }

  it('rejects a malformed AAGUID in realm settings with a message naming it', () => {
    const result = realmSettingsSchema.safeParse({ passkeys: { attestation: 'allowlist', aaguids: ['not-a-uuid'] } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('AAGUID');
  });
});
