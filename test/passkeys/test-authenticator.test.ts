import { describe, expect, it } from 'vitest';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type WebAuthnCredential,
} from '@simplewebauthn/server';
import { decodeClientDataJSON, isoBase64URL } from '@simplewebauthn/server/helpers';
import { AuthenticatorError, SoftAuthenticator, b64url } from '../helpers/authenticator.js';

const RP_ID = 'login.example.localhost';
const ORIGIN = `https://${RP_ID}`;
const AAGUID = 'fbfc3007-154e-4ecc-8c0b-6e020557d7bd';

async function regOptions(extra: Partial<Parameters<typeof generateRegistrationOptions>[0]> = {}) {
  return generateRegistrationOptions({
    rpName: 'Latchkey',
    rpID: RP_ID,
    userName: 'alice',
    userID: new TextEncoder().encode('user-alice'),
    ...extra,
  });
}

/** Register and verify, returning the credential as a server would store it. */
async function register(auth: SoftAuthenticator): Promise<WebAuthnCredential> {
  const options = await regOptions();
  const response = await auth.createCredential(options, ORIGIN);
  const result = await verifyRegistrationResponse({
    response,
    expectedChallenge: options.challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
  });
  expect(result.verified).toBe(true);
  return result.registrationInfo!.credential;
}

async function authenticate(
  auth: SoftAuthenticator,
  credential: WebAuthnCredential,
  overrides: Parameters<SoftAuthenticator['getAssertion']>[2] = {},
  verifyExtra: Partial<Parameters<typeof verifyAuthenticationResponse>[0]> = {},
) {
  const options = await generateAuthenticationOptions({ rpID: RP_ID, allowCredentials: [{ id: credential.id }] });
  const response = await auth.getAssertion(options, ORIGIN, overrides);
  return verifyAuthenticationResponse({
    response,
    expectedChallenge: options.challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
    credential,
    ...verifyExtra,
  });
}

describe('SoftAuthenticator registration', () => {
  it('produces a RegistrationResponseJSON that verifies (attestation none, synced passkey defaults)', async () => {
    const auth = new SoftAuthenticator();
    const options = await regOptions();
    const response = await auth.createCredential(options, ORIGIN);

    expect(response.id).toBe(response.rawId);
    expect(response.type).toBe('public-key');
    expect(response.authenticatorAttachment).toBe('platform');
    expect(response.response.publicKeyAlgorithm).toBe(-7);
    expect(response.response.transports).toEqual(['internal', 'hybrid']);
    expect(isoBase64URL.isBase64URL(response.response.publicKey!)).toBe(true);
    expect(response.clientExtensionResults).toEqual({ credProps: { rk: true } });
    const cd = decodeClientDataJSON(response.response.clientDataJSON);
    expect(cd).toMatchObject({ type: 'webauthn.create', challenge: options.challenge, origin: ORIGIN, crossOrigin: false });

    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      requireUserVerification: true,
    });
    expect(result.verified).toBe(true);
    const info = result.registrationInfo!;
    expect(info.fmt).toBe('none');
    expect(info.aaguid).toBe('00000000-0000-0000-0000-000000000000');
    expect(info.credentialDeviceType).toBe('multiDevice');
    expect(info.credentialBackedUp).toBe(true);
    expect(info.userVerified).toBe(true);
    expect(info.rpID).toBe(RP_ID);
    expect(info.origin).toBe(ORIGIN);
    expect(info.credential.id).toBe(response.id);
    expect(info.credential.counter).toBe(0);
    expect(info.credential.transports).toEqual(['internal', 'hybrid']);
    expect(info.credential.publicKey).toEqual(auth.publicKeyOf(response.id));

    expect(auth.credentials()).toEqual([{ id: response.id, rpId: RP_ID, userHandle: options.user.id, counter: 0 }]);
  });

  it('packed self-attestation with a custom AAGUID and single-device flags', async () => {
    const auth = new SoftAuthenticator({
      aaguid: AAGUID,
      attestation: 'packed-self',
      backupEligible: false,
      transports: ['usb'],
    });
    const options = await regOptions({ attestationType: 'direct' });
    const response = await auth.createCredential(options, ORIGIN);
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
    });
    expect(result.verified).toBe(true);
    const info = result.registrationInfo!;
    expect(info.fmt).toBe('packed');
    expect(info.aaguid).toBe(AAGUID);
    expect(info.credentialDeviceType).toBe('singleDevice');
    expect(info.credentialBackedUp).toBe(false);
    expect(info.credential.transports).toEqual(['usb']);
  });

  it('backup eligible but not yet backed up', async () => {
    const auth = new SoftAuthenticator({ backedUp: false });
    const options = await regOptions();
    const result = await verifyRegistrationResponse({
      response: await auth.createCredential(options, ORIGIN),
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
    });
    expect(result.registrationInfo!.credentialDeviceType).toBe('multiDevice');
    expect(result.registrationInfo!.credentialBackedUp).toBe(false);
  });

  it('falls back to Ed25519 when ES256 is not offered, and it authenticates', async () => {
    const auth = new SoftAuthenticator({ attestation: 'packed-self' });
    const options = await regOptions({ supportedAlgorithmIDs: [-8, -257] });
    const response = await auth.createCredential(options, ORIGIN);
    expect(response.response.publicKeyAlgorithm).toBe(-8);
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      supportedAlgorithmIDs: [-8, -257],
    });
    expect(result.verified).toBe(true);
    const auth1 = await authenticate(auth, result.registrationInfo!.credential);
    expect(auth1.verified).toBe(true);
  });

  it('rejects when no supported algorithm is offered', async () => {
    const auth = new SoftAuthenticator();
    const options = await regOptions({ supportedAlgorithmIDs: [-257] });
    await expect(auth.createCredential(options, ORIGIN)).rejects.toBeInstanceOf(AuthenticatorError);
  });

  it('refuses to re-register an excluded credential (InvalidStateError)', async () => {
    const auth = new SoftAuthenticator();
    const cred = await register(auth);
    const options = await regOptions({ excludeCredentials: [{ id: cred.id }] });
    await expect(auth.createCredential(options, ORIGIN)).rejects.toMatchObject({ name: 'InvalidStateError' });
  });

  it('fails on wrong origin, rpId, challenge, type, and missing UV', async () => {
    const auth = new SoftAuthenticator();
    const options = await regOptions();
    const base = { expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RP_ID };

    await expect(
      verifyRegistrationResponse({ ...base, response: await auth.createCredential(options, 'https://evil.localhost') }),
    ).rejects.toThrow(/origin/);
    await expect(
      verifyRegistrationResponse({ ...base, response: await auth.createCredential(options, ORIGIN, { rpId: 'evil.localhost' }) }),
    ).rejects.toThrow(/RP ID/i);
    await expect(
      verifyRegistrationResponse({
        ...base,
        response: await auth.createCredential(options, ORIGIN, { challenge: b64url(Buffer.from('other')) }),
      }),
    ).rejects.toThrow(/challenge/);
    await expect(
      verifyRegistrationResponse({ ...base, response: await auth.createCredential(options, ORIGIN, { type: 'webauthn.get' }) }),
    ).rejects.toThrow(/type/);

    const noUv = new SoftAuthenticator({ userVerification: false });
    const noUvResponse = await noUv.createCredential(options, ORIGIN);
    await expect(verifyRegistrationResponse({ ...base, response: noUvResponse })).rejects.toThrow(/verification/);
    // Default requireUserVerification is true; explicitly false accepts it.
    const lax = await verifyRegistrationResponse({ ...base, response: noUvResponse, requireUserVerification: false });
    expect(lax.verified).toBe(true);
    expect(lax.registrationInfo!.userVerified).toBe(false);
  });
});

describe('SoftAuthenticator authentication', () => {
  it('produces an AuthenticationResponseJSON that verifies and increments the counter', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    const options = await generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'required' });
    const response = await auth.getAssertion(options, ORIGIN); // discoverable: no allowCredentials
    expect(response.id).toBe(credential.id);
    expect(response.response.userHandle).toBe(auth.credentials()[0]!.userHandle);
    expect(isoBase64URL.toUTF8String(response.response.userHandle!)).toBe('user-alice');

    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credential,
      requireUserVerification: true,
    });
    expect(result.verified).toBe(true);
    expect(result.authenticationInfo).toMatchObject({
      credentialID: credential.id,
      newCounter: 1,
      userVerified: true,
      credentialDeviceType: 'multiDevice',
      credentialBackedUp: true,
      origin: ORIGIN,
      rpID: RP_ID,
    });

    const second = await authenticate(auth, { ...credential, counter: result.authenticationInfo.newCounter });
    expect(second.verified).toBe(true);
    expect(second.authenticationInfo.newCounter).toBe(2);
    expect(auth.credentials()[0]!.counter).toBe(2);
  });

  it('honours allowCredentials and credentialId', async () => {
    const auth = new SoftAuthenticator();
    const first = await register(auth);
    const second = await register(auth);
    const options = await generateAuthenticationOptions({ rpID: RP_ID, allowCredentials: [{ id: first.id }] });
    expect((await auth.getAssertion(options, ORIGIN)).id).toBe(first.id);
    const any = await generateAuthenticationOptions({ rpID: RP_ID });
    expect((await auth.getAssertion(any, ORIGIN)).id).toBe(second.id);
    expect((await auth.getAssertion(any, ORIGIN, { credentialId: first.id })).id).toBe(first.id);

    const unknown = await generateAuthenticationOptions({ rpID: RP_ID, allowCredentials: [{ id: b64url(Buffer.alloc(32)) }] });
    await expect(auth.getAssertion(unknown, ORIGIN)).rejects.toMatchObject({ name: 'NotAllowedError' });
    const otherRp = await generateAuthenticationOptions({ rpID: 'other.localhost' });
    await expect(auth.getAssertion(otherRp, 'https://other.localhost')).rejects.toMatchObject({ name: 'NotAllowedError' });
  });

  it('fails on wrong origin', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    const options = await generateAuthenticationOptions({ rpID: RP_ID });
    const response = await auth.getAssertion(options, 'https://evil.localhost');
    await expect(
      verifyAuthenticationResponse({ response, expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RP_ID, credential }),
    ).rejects.toThrow(/origin/);
  });

  it('fails on wrong rpId', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    await expect(authenticate(auth, credential, { rpId: 'evil.localhost' })).rejects.toThrow(/RP ID/i);
  });

  it('fails on wrong challenge and wrong type', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    await expect(authenticate(auth, credential, { challenge: b64url(Buffer.from('stale')) })).rejects.toThrow(/challenge/);
    await expect(authenticate(auth, credential, { type: 'webauthn.create' })).rejects.toThrow(/type/);
  });

  it('fails when the counter goes backwards (or repeats) after being > 0', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    const ok = await authenticate(auth, { ...credential, counter: 0 }, { counter: 5 });
    expect(ok.verified).toBe(true);
    expect(ok.authenticationInfo.newCounter).toBe(5);
    const stored = { ...credential, counter: 5 };
    await expect(authenticate(auth, stored, { counter: 3 })).rejects.toThrow(/counter/);
    await expect(authenticate(auth, stored, { counter: 5 })).rejects.toThrow(/counter/);
    // A counter that is always 0 (synced passkeys) is fine while the stored counter is 0.
    const zero = new SoftAuthenticator({ signCount: 'zero' });
    const zc = await register(zero);
    const z1 = await authenticate(zero, zc);
    const z2 = await authenticate(zero, zc);
    expect([z1.verified, z2.verified, z2.authenticationInfo.newCounter]).toEqual([true, true, 0]);
  });

  it('fails when UV is missing and required; passes when not required', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    await expect(authenticate(auth, credential, { userVerification: false })).rejects.toThrow(/verification/);
    const lax = await authenticate(auth, credential, { userVerification: false }, { requireUserVerification: false });
    expect(lax.verified).toBe(true);
    expect(lax.authenticationInfo.userVerified).toBe(false);
  });

  it('a tampered signature yields verified:false (not a throw)', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    const options = await generateAuthenticationOptions({ rpID: RP_ID });
    const response = await auth.getAssertion(options, ORIGIN);
    // Sign with another credential's key: the signature is well-formed but wrong.
    const other = new SoftAuthenticator();
    const otherCredential = await register(other);
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credential: { ...otherCredential, id: credential.id },
    });
    expect(result.verified).toBe(false);
  });

  it('replayLast returns the identical assertion; SimpleWebAuthn only catches it via the counter', async () => {
    const auth = new SoftAuthenticator();
    const credential = await register(auth);
    const options = await generateAuthenticationOptions({ rpID: RP_ID });
    const first = await auth.getAssertion(options, ORIGIN);
    const replay = auth.replayLast();
    expect(replay).toEqual(first);
    const verify = (counter: number) =>
      verifyAuthenticationResponse({
        response: replay,
        expectedChallenge: options.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential: { ...credential, counter },
      });
    // Same challenge + stored counter not yet bumped: the library accepts it — challenge single-use is the server's job.
    expect((await verify(0)).verified).toBe(true);
    await expect(verify(1)).rejects.toThrow(/counter/);
  });
});
