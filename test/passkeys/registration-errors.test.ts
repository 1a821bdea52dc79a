import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchkeyError } from '../../src/errors.js';
import { PasskeyService } from '../../src/passkeys/service.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { discover } from '../helpers/flows.js';
import type { Browser } from '../helpers/http.js';
import { newUserAtPasskeyOffer, postJson, storedPasskeys, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';
const PREFIX = 'This passkey could not be registered: ';
/** Pieces of SimpleWebAuthn's own error texts, none of which may reach the user. */
const LIBRARY_TEXT = [/Unexpected/, /expected/, /was required/, /RP ID hash/, /\balg\b/, /registration response/, /evil\.example/, /attestation statement/i, /AAGUID/];

/** The same response with the COSE algorithm of its public key replaced (attestation "none": nothing signs it). */
function withKeyAlgorithm(response: RegistrationResponseJSON, alg: number): RegistrationResponseJSON {
  const attestation = isoCBOR.decodeFirst<Map<string, unknown>>(isoBase64URL.toBuffer(response.response.attestationObject));
  const authData = attestation.get('authData') as Uint8Array;
  // rpIdHash(32) flags(1) counter(4) aaguid(16) credentialIdLength(2) credentialId, then the COSE key
  const idLength = (authData[53]! << 8) | authData[54]!;
  const keyStart = 55 + idLength;
  const key = isoCBOR.decodeFirst<Map<number, unknown>>(authData.slice(keyStart));
  key.set(3, alg);
  const newAuthData = Buffer.concat([authData.slice(0, keyStart), isoCBOR.encode(key as any)]);
  attestation.set('authData', newAuthData);
  return { ...response, response: { ...response.response, attestationObject: isoBase64URL.fromBuffer(isoCBOR.encode(attestation as any)) } };
}

/**
 * verifyRegistration put SimpleWebAuthn's error text into the message shown to the user ("The passkey could
 * not be registered: Unexpected registration response origin "https://…", expected one of: …"). Each
 * failure now has a stable code of ours and a plain message; the library's text goes to the debug log only.
 */
describe('a passkey registration the server refuses', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer();
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
  });
  afterAll(async () => server?.close());

  /** A new user at the passkey offer that follows their password. */
  async function offer(): Promise<{ browser: Browser; page: SignInPage; email: string }> {
    const email = `reg${++n}@example.test`;
    return { ...(await newUserAtPasskeyOffer(server, config, REDIRECT, email)), email };
  }
  const credentialsOf = (email: string) => storedPasskeys(server, email);

  const cases: Array<[string, string, RegExp, (options: any, issuer: string) => Promise<unknown>]> = [
    ['made for another website (origin)', 'origin_mismatch', /created on a different website/, (o) => new SoftAuthenticator().createCredential(o, 'https://evil.example')],
    ['made for another domain (RP ID)', 'rp_id_mismatch', /for a different domain/, (o, iss) => new SoftAuthenticator().createCredential(o, iss, { rpId: 'evil.example' })],
    ['a sign-in response instead of a registration', 'wrong_ceremony', /for signing in, not for creating a passkey/, (o, iss) => new SoftAuthenticator().createCredential(o, iss, { type: 'webauthn.get' })],
    ['no user presence', 'user_not_present', /did not confirm that you were there/, (o, iss) => new SoftAuthenticator().createCredential(o, iss, { userPresence: false })],
    ['no user verification for a passkey', 'user_not_verified', /did not check that it is you/, (o, iss) => new SoftAuthenticator({ userVerification: false }).createCredential(o, iss)],
    ['a key algorithm the server does not accept (ES512)', 'unsupported_algorithm', /signing algorithm this server does not accept/, async (o, iss) => withKeyAlgorithm(await new SoftAuthenticator().createCredential(o, iss), -36)],
    ['a rawId that is not the id', 'invalid_response', /incomplete or malformed/, async (o, iss) => ({ ...(await new SoftAuthenticator().createCredential(o, iss)), rawId: 'AAAA' })],
    ['an attestation object that is not CBOR', 'invalid_response', /incomplete or malformed/, async (o, iss) => {
      const r = await new SoftAuthenticator().createCredential(o, iss);
      return { ...r, response: { ...r.response, attestationObject: isoBase64URL.fromBuffer(Buffer.from('not cbor at all')) } };
    }],
    ['a self-attestation whose signature does not match', 'attestation_invalid', /proof of what it is/, async (o, iss) => {
      const r = await new SoftAuthenticator({ attestation: 'packed-self' }).createCredential(o, iss);
      const attestation = isoCBOR.decodeFirst<Map<string, any>>(isoBase64URL.toBuffer(r.response.attestationObject));
      const sig = Uint8Array.from(attestation.get('attStmt').get('sig') as Uint8Array);
      sig[sig.length - 1]! ^= 0xff;
      attestation.get('attStmt').set('sig', sig);
      return { ...r, response: { ...r.response, attestationObject: isoBase64URL.fromBuffer(isoCBOR.encode(attestation as any)) } };
    }],
  ];

  for (const [label, code, message, respond] of cases) {
    it(`${label}: 400 ${code}, our message, none of the library's text, nothing stored`, async () => {
      const { browser, page, email } = await offer();
      const options = await postJson(browser, page, '/passkey/register/options', {});
      expect(options.status).toBe(200);
      const res = await postJson(browser, page, '/passkey/register/verify', { response: await respond(options.body, server.issuer) });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe(code);
      expect(res.body.error_description.startsWith(PREFIX), res.body.error_description).toBe(true);
      expect(res.body.error_description).toMatch(message);
      for (const text of LIBRARY_TEXT) expect(res.body.error_description).not.toMatch(text);
      expect(await credentialsOf(email)).toHaveLength(0);
    });
  }

  it('a right response to a challenge a refused one has used: challenge_invalid, in our words', async () => {
    const { browser, page, email } = await offer();
    const options = await postJson(browser, page, '/passkey/register/options', {});
    const authenticator = new SoftAuthenticator();
    const refused = await postJson(browser, page, '/passkey/register/verify', { response: await authenticator.createCredential(options.body, 'https://evil.example') });
    expect(refused.body.error).toBe('origin_mismatch');
    const again = await postJson(browser, page, '/passkey/register/verify', { response: await new SoftAuthenticator().createCredential(options.body, server.issuer) });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('challenge_invalid');
    expect(again.body.error_description).toBe(`${PREFIX}the request has expired or was already used. Start again.`);
    expect(await credentialsOf(email)).toHaveLength(0);
  });

  it("the library's own text is logged at debug level only", async () => {
    const logged: Array<{ level: string; args: unknown[] }> = [];
    const record = (level: string) => (...args: unknown[]) => void logged.push({ level, args });
    const log = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const service = new PasskeyService(server.services.db, async () => {}, log as any);
    const realm = await server.services.realms.get('default');
    await server.cli(['user', 'create', '--realm', 'default', '--email', 'logged@example.test']);
    const user = (await server.services.users.findByEmail('default', 'logged@example.test'))!;
    const rp = { rpId: 'localhost', origins: [server.issuer], name: 'Latchkey' };
    const who = { id: user.id, email: user.email, name: null };
    const options = await service.registrationOptions({ realmId: 'default', settings: realm.settings, rp, user: who, boundTo: 'test:log', kind: 'passkey' });
    const response = await new SoftAuthenticator().createCredential(options, 'https://evil.example');
    const err = await service.verifyRegistration({ realmId: 'default', settings: realm.settings, rp, user: who, boundTo: 'test:log', kind: 'passkey', response }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LatchkeyError);
    expect((err as LatchkeyError).code).toBe('origin_mismatch');
    expect(logged.map((l) => l.level)).toEqual(['debug']);
    expect(JSON.stringify(logged[0]!.args)).toContain('Unexpected registration response origin');
  });
});
