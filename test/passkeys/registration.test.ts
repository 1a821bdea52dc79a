import { afterAll, beforeAll, expect, it } from 'vitest';
import { realmSettingsSchema } from '../../src/realms/settings.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describeEachDatabase('passkey registration', (kind) => {
  let server: TestServer;
  const settings = realmSettingsSchema.parse({});
  const rp = { rpId: 'localhost', origins: [] as string[], name: 'Latchkey' };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    rp.origins = [server.issuer];
    const created = await server.cli(['realm', 'create', '--id', 'other', '--name', 'Other', '--issuer', `http://other.localhost:${server.port}`]);
    expect(created.code, created.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  async function options(realmId: string, email: string, boundTo: string) {
    const user = await server.services.users.create({ realmId, email });
    const who = { id: user.id, email, name: null };
    const opts = await server.services.passkeys.registrationOptions({ realmId, settings, rp, user: who, boundTo, kind: 'passkey' });
    return { who, opts };
  }

  it('refuses a credential id already registered in another realm with a clear 400, writing nothing', async () => {
    // a credential in the default realm ...
    const first = await options('default', 'first@example.test', 'reg:first');
    const stored = await server.services.passkeys.verifyRegistration({
      realmId: 'default',
      settings,
      rp,
      user: first.who,
      boundTo: 'reg:first',
      kind: 'passkey',
      response: await new SoftAuthenticator().createCredential(first.opts, server.issuer),
    });
    // ... and a registration in another realm whose response claims the same credential id (a client
    // without attestation can send any id it likes)
    const second = await options('other', 'second@example.test', 'reg:second');
    const response = await new SoftAuthenticator().createCredential(second.opts, server.issuer);
    await server.services.db('webauthn_credentials').where({ id: stored.id }).update({ id: response.id });
    const attempt = server.services.passkeys.verifyRegistration({ realmId: 'other', settings, rp, user: second.who, boundTo: 'reg:second', kind: 'passkey', response });
    await expect(attempt).rejects.toMatchObject({ code: 'already_registered', status: 400 });
    const rows = await server.services.db('webauthn_credentials').where({ id: response.id });
    expect(rows).toHaveLength(1);
    expect(rows[0].realm_id).toBe('default');
  });
});
