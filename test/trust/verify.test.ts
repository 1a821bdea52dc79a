import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { LatchkeyError } from '../../src/errors.js';
import { KeyService } from '../../src/keys/service.js';
import { RealmService } from '../../src/realms/service.js';
import { TrustService } from '../../src/trust/service.js';
import { describeEachDatabase, freshDatabase, migratedDatabase, type TestDatabase } from '../helpers/databases.js';
import { startTestIssuer, type TestIssuer } from '../helpers/trusted-issuer.js';

async function failure(p: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LatchkeyError);
    return err as LatchkeyError;
  }
  throw new Error('expected the promise to fail');
}

const CLAIMS = {
  sub: 'repo:my-org/my-repo:ref:refs/heads/main',
  alt_sub: 'alt-7',
  team: 'platform',
  additional_claims: { other: 'blue' },
  'https://company.domain.com/claims': { property: 'acme-42' },
};

describeEachDatabase('trusted issuers: registration and verification', (kind) => {
  let migrated: Awaited<ReturnType<typeof migratedDatabase>>;
  let database: TestDatabase;
  let db: Db;
  let idp: TestIssuer;
  let trust: TrustService;
  let clock = Date.now();

  beforeAll(async () => {
    migrated = await migratedDatabase(kind);
    ({ database, db } = migrated);
    const realms = new RealmService(db, new KeyService(db, new SecretBox('s'.repeat(43)), { retentionMs: 60_000 }));
    await realms.create({ id: 'r1', issuers: ['https://r1.example.test'] });
    await realms.create({ id: 'r2', issuers: ['https://r2.example.test'] });
    idp = await startTestIssuer();
    // a controllable clock for the key cache only (token times are checked against the real clock)
    trust = new TrustService(db, { now: () => clock });
  });
  afterAll(async () => {
    await idp?.close();
    await migrated?.close();
  });

  describe('registration', () => {
    it('reads iss and aud from a sample token and checks the expression against it', async () => {
      const sample = await idp.mint({ ...CLAIMS, aud: 'sample-aud' });
      const added = await trust.add({ realmId: 'r1', sampleToken: sample, userIdExpression: '{team}|{additional_claims.other}', id: 'from-sample' });
      expect(added).toMatchObject({ id: 'from-sample', issuer: idp.issuer, audience: 'sample-aud', user_id_expression: '{team}|{additional_claims.other}', sample_user_id: 'platform|blue' });
      expect((await trust.list('r1')).map((t) => t.id)).toContain('from-sample');
    });

    it('refuses a sample whose claims do not give a user id, and writes nothing', async () => {
      const sample = await idp.mint({ ...CLAIMS, aud: 'missing-aud' });
      const e = await failure(trust.add({ realmId: 'r1', sampleToken: sample, userIdExpression: '{team}|{not_there}' }));
      expect(e.code).toBe('user_id_expression_failed');
      expect(e.message).toContain('{not_there}');
      const number = await failure(trust.add({ realmId: 'r1', sampleToken: await idp.mint({ sub: 'x', n: 5, aud: 'missing-aud' }), userIdExpression: '{n}' }));
      expect(number.message).toMatch(/\{n\} is a number/);
      expect((await trust.list('r1')).some((t) => t.audience === 'missing-aud')).toBe(false);
    });

    it('asks which audience when the sample has several, and accepts one of them', async () => {
      const sample = await idp.mint({ ...CLAIMS, aud: ['multi-a', 'multi-b'] });
      expect((await failure(trust.add({ realmId: 'r1', sampleToken: sample }))).message).toMatch(/^audience: the sample token has several audiences \(multi-a, multi-b\): choose one with audience$/);
      expect((await failure(trust.add({ realmId: 'r1', sampleToken: sample, audience: 'multi-c' }))).message).toMatch(/"multi-c" is not in the sample token's aud/);
      expect(await trust.add({ realmId: 'r1', sampleToken: sample, audience: 'multi-b' })).toMatchObject({ audience: 'multi-b', sample_user_id: CLAIMS.sub });
    });

    it('refuses a sample that is not a JWT or whose iss differs from --issuer', async () => {
      expect((await failure(trust.add({ realmId: 'r1', sampleToken: 'not-a-jwt' }))).message).toMatch(/not a JWT/);
      const sample = await idp.mint({ ...CLAIMS, aud: 'x' });
      expect((await failure(trust.add({ realmId: 'r1', sampleToken: sample, issuer: 'https://other.example.test' }))).message).toMatch(/does not match the sample token's iss/);
    });

    it('registers by hand with issuer and audience, checking what it can', async () => {
      expect(await trust.add({ realmId: 'r1', issuer: 'https://token.actions.githubusercontent.com', audience: 'https://github.com/my-org' })).toMatchObject({
        user_id_expression: '{sub}',
        user_id_prefix: '',
      });
      expect((await failure(trust.add({ realmId: 'r1', issuer: 'http://ci.example.test', audience: 'a' }))).message).toMatch(/must use https/);
      expect((await failure(trust.add({ realmId: 'r1', issuer: 'https://ci.example.test/?x=1', audience: 'a' }))).message).toMatch(/query or fragment/);
      expect((await failure(trust.add({ realmId: 'r1', issuer: 'https://ci.example.test', audience: 'a', userIdExpression: '{sub' }))).code).toBe('invalid_user_id_expression');
      expect((await failure(trust.add({ realmId: 'r1', issuer: 'https://ci.example.test' }))).message).toMatch(/audience is required/);
      expect((await failure(trust.add({ realmId: 'nope', issuer: 'https://ci.example.test', audience: 'a' }))).code).toBe('not_found');
      const dup = await failure(trust.add({ realmId: 'r1', issuer: 'https://token.actions.githubusercontent.com', audience: 'https://github.com/my-org' }));
      expect(dup.code).toBe('conflict');
      expect((await failure(trust.add({ realmId: 'r1', issuer: 'https://ci.example.test', audience: 'a', id: 'bad id!' }))).message).toMatch(/id "bad id!"/);
    });
  });

  describe('verification', () => {
    beforeAll(async () => {
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-sub', id: 'sub' });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-alt', userIdExpression: '{alt_sub}' });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-multi', userIdExpression: '{team}|{additional_claims.other}' });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-url', userIdExpression: '{https://company.domain.com/claims.property}' });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-prefix', prefix: 'google|', adminUserIds: [`google|${CLAIMS.sub}`] });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'aud-hole', userIdExpression: '{sub}/{workflow}' });
    });

    it.each([
      ['aud-sub', CLAIMS.sub],
      ['aud-alt', 'alt-7'],
      ['aud-multi', 'platform|blue'],
      ['aud-url', 'acme-42'],
      ['aud-prefix', `google|${CLAIMS.sub}`],
    ])('computes the user id for audience %s', async (aud, expected) => {
      const { userId, claims, trustedIssuer } = await trust.verify('r1', await idp.mint({ ...CLAIMS, aud }));
      expect(userId).toBe(expected);
      expect(claims.aud).toBe(aud);
      expect(trustedIssuer.audience).toBe(aud);
    });

    it('picks the registration whose audience is in an array aud', async () => {
      expect((await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: ['unknown', 'aud-alt'] }))).userId).toBe('alt-7');
    });

    it('tells admins apart by their computed user id', async () => {
      const admin = await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-prefix' }));
      expect(trust.isAdmin(admin.trustedIssuer, admin.userId)).toBe(true);
      const other = await trust.verify('r1', await idp.mint({ ...CLAIMS, sub: 'repo:my-org/other:ref:refs/heads/main', aud: 'aud-prefix' }));
      expect(trust.isAdmin(other.trustedIssuer, other.userId)).toBe(false);
    });

    it('fails at use time on a claim the token lacks, never returning a partial id', async () => {
      const e = await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-hole' })));
      expect(e.code).toBe('user_id_expression_failed');
      expect(e.message).toContain('{workflow}');
      expect((await trust.verify('r1', await idp.mint({ ...CLAIMS, workflow: 'deploy', aud: 'aud-hole' }))).userId).toBe(`${CLAIMS.sub}/deploy`);
    });

    it('refuses a token whose payload was changed after signing', async () => {
      const [h, , s] = (await idp.mint({ ...CLAIMS, aud: 'aud-sub' })).split('.');
      const forged = base64url.encode(JSON.stringify({ ...CLAIMS, sub: 'repo:evil/repo:ref:refs/heads/main', iss: idp.issuer, aud: 'aud-sub', exp: Math.floor(Date.now() / 1000) + 300 }));
      const e = await failure(trust.verify('r1', `${h}.${forged}.${s}`));
      expect(e.code).toBe('invalid_token');
      expect(e.message).toMatch(/signature does not verify/);
    });

    it('refuses a signature by a key the issuer does not publish', async () => {
      const e = await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub' }, { key: await idp.unpublishedKey(), kid: idp.current().kid })));
      expect(e.message).toMatch(/signature does not verify/);
    });

    it('refuses a wrong audience, naming it', async () => {
      const e = await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'someone-else' })));
      expect(e.code).toBe('invalid_token');
      expect(e.message).toMatch(/audience \(someone-else\)/);
    });

    it('refuses an expired token, a token not yet valid, one issued in the future and one without exp', async () => {
      const now = Math.floor(Date.now() / 1000);
      expect((await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub', iat: now - 600, exp: now - 120 })))).message).toMatch(/expired/);
      expect((await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub', nbf: now + 600 })))).message).toMatch(/"nbf"/);
      expect((await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub', iat: now + 600, exp: now + 900 })))).message).toMatch(/iat|future/);
      expect((await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub', exp: undefined })))).message).toMatch(/"exp"/);
      // within the clock tolerance an only just expired token still passes
      expect((await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub', iat: now - 300, exp: now - 5 }))).userId).toBe(CLAIMS.sub);
    });

    it('refuses alg "none"', async () => {
      const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
      const payload = base64url.encode(JSON.stringify({ ...CLAIMS, iss: idp.issuer, aud: 'aud-sub', exp: Math.floor(Date.now() / 1000) + 300 }));
      const e = await failure(trust.verify('r1', `${header}.${payload}.`));
      expect(e.code).toBe('invalid_token');
      expect(e.message).toMatch(/alg "none"/);
    });

    it('refuses HS256 signed with the issuer\'s public key as the secret', async () => {
      const key = idp.current();
      for (const secret of [key.publicPem, JSON.stringify(key.publicJwk)]) {
        const token = await new SignJWT({ ...CLAIMS, iss: idp.issuer, aud: 'aud-sub' })
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(secret));
        const e = await failure(trust.verify('r1', token));
        expect(e.code).toBe('invalid_token');
        expect(e.message).toMatch(/symmetric algorithm "HS256" is refused/);
      }
    });

    it('refuses tokens from issuers the realm does not trust, and another realm\'s trust does not count', async () => {
      const e = await failure(trust.verify('r2', await idp.mint({ ...CLAIMS, aud: 'aud-sub' })));
      expect(e.code).toBe('untrusted_issuer');
      const other = await startTestIssuer();
      try {
        expect((await failure(trust.verify('r1', await other.mint({ ...CLAIMS, aud: 'aud-sub' })))).code).toBe('untrusted_issuer');
      } finally {
        await other.close();
      }
      expect((await failure(trust.verify('r1', 'garbage'))).message).toMatch(/not a JWT/);
    });

    it('refetches the JWKS once on an unknown kid after the issuer rotates its keys, and no more than that', async () => {
      await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub' })); // keys are cached
      const before = { ...idp.fetches };
      await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub' }));
      expect(idp.fetches).toEqual(before); // served from the cache

      clock += 60_000; // past the refetch cooldown, well inside the cache's lifetime
      await idp.rotate();
      const rotated = await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-alt' }));
      expect(rotated.userId).toBe('alt-7');
      expect(idp.fetches.jwks).toBe(before.jwks + 1);

      // a flood of made-up kids right after does not reach the issuer
      const stranger = await idp.unpublishedKey();
      for (let i = 0; i < 5; i++) {
        const e = await failure(trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub' }, { key: stranger })));
        expect(e.message).toMatch(new RegExp(`no signing key with kid "${stranger.kid}"`));
      }
      expect(idp.fetches.jwks).toBe(before.jwks + 1);
      // the rotated key keeps working from the cache
      expect((await trust.verify('r1', await idp.mint({ ...CLAIMS, aud: 'aud-sub' }))).userId).toBe(CLAIMS.sub);
      expect(idp.fetches.jwks).toBe(before.jwks + 1);
    });

    it('stops accepting an issuer once it is removed', async () => {
      await trust.add({ realmId: 'r2', issuer: idp.issuer, audience: 'r2-aud', id: 'gone' });
      expect((await trust.verify('r2', await idp.mint({ ...CLAIMS, aud: 'r2-aud' }))).userId).toBe(CLAIMS.sub);
      expect(await trust.remove('r2', 'gone')).toEqual({ removed: 'gone', realm: 'r2' });
      expect((await failure(trust.verify('r2', await idp.mint({ ...CLAIMS, aud: 'r2-aud' })))).code).toBe('untrusted_issuer');
      expect((await failure(trust.remove('r2', 'gone'))).code).toBe('not_found');
    });
  });
});

describe('trusted issuers: an unreachable issuer', () => {
  it('is a clear error, not a crash, and is not asked again on every token', async () => {
    const database = await freshDatabase('sqlite');
    const db = openDatabase(database.url);
    try {
      await migrate(db);
      await new RealmService(db, new KeyService(db, new SecretBox('s'.repeat(43)), { retentionMs: 60_000 })).create({ id: 'r1', issuers: ['https://r1.example.test'] });
      const idp = await startTestIssuer();
      const token = await idp.mint({ sub: 'x', aud: 'a' });
      await idp.close();
      let calls = 0;
      let clock = Date.now();
      const counting: typeof fetch = (input, init) => {
        calls++;
        return fetch(input, init);
      };
      const trust = new TrustService(db, { timeoutMs: 2000, fetch: counting, now: () => clock });
      await trust.add({ realmId: 'r1', issuer: idp.issuer, audience: 'a' });
      const e = await failure(trust.verify('r1', token));
      expect(e.code).toBe('issuer_unreachable');
      expect(e.message).toContain(`${idp.issuer}/.well-known/openid-configuration`);
      // more tokens right away fail fast without calling the issuer again; after the backoff they try again
      for (let i = 0; i < 3; i++) expect((await failure(trust.verify('r1', token))).code).toBe('issuer_unreachable');
      expect(calls).toBe(1);
      clock += 10_000;
      expect((await failure(trust.verify('r1', token))).code).toBe('issuer_unreachable');
      expect(calls).toBe(2);

      // a discovery document that names another issuer is not followed to its keys
      const lying = await startTestIssuer();
      try {
        const impostor: typeof fetch = async (input) =>
          String(input).endsWith('/.well-known/openid-configuration')
            ? new Response(JSON.stringify({ issuer: 'https://elsewhere.example.test', jwks_uri: `${lying.issuer}/jwks` }), { headers: { 'content-type': 'application/json' } })
            : fetch(input);
        const strict = new TrustService(db, { fetch: impostor });
        await strict.add({ realmId: 'r1', issuer: lying.issuer, audience: 'a' });
        const mismatch = await failure(strict.verify('r1', await lying.mint({ sub: 'x', aud: 'a' })));
        expect(mismatch.code).toBe('issuer_unreachable');
        expect(mismatch.message).toMatch(/names issuer "https:\/\/elsewhere.example.test"/);
        expect(lying.fetches.jwks).toBe(0);
      } finally {
        await lying.close();
      }
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
