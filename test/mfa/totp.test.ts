import { base32Decode, codeAt, codeForStep, hotp, stepOf } from '../helpers/totp.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { factorsRepo } from '../../src/db/factors-repo.js';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { TotpService, totpThrottleKey } from '../../src/mfa/totp.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

// ---- An independent RFC 6238 implementation (HMAC-SHA1, 6 digits, 30 s), used to compute codes. ----

/** A six-digit code matching none of the steps `step - 2 .. step + 2`. */
function wrongCode(secret: string, step: number): string {
  const taken = new Set([-2, -1, 0, 1, 2].map((d) => codeForStep(secret, step + d)));
  let n = 123456;
  while (taken.has(String(n))) n++;
  return String(n);
}

describe('the test RFC 6238 implementation', () => {
  it('reproduces the RFC 6238 SHA-1 test vectors (last six digits)', () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of "12345678901234567890"
    expect(base32Decode(secret).toString('ascii')).toBe('12345678901234567890');
    expect(codeAt(secret, 59_000)).toBe('287082'); // 94287082
    expect(codeAt(secret, 1_111_111_109_000)).toBe('081804'); // 07081804
    expect(codeAt(secret, 1_234_567_890_000)).toBe('005924'); // 89005924
    expect(codeAt(secret, 20_000_000_000_000)).toBe('353130'); // 65353130
  });
});

// ---- The service ----

const REALM = 'default';
const USER = 'user-1';
const OTHER = 'user-2';
const STEP = 63_333_333;
/** Ten seconds into step STEP (epoch ms). */
const NOW = (STEP * 30 + 10) * 1000;

describeEachDatabase('TotpService', (kind) => {
  let tdb: TestDatabase;
  let db: Db;
  let box: SecretBox;
  let totp: TotpService;

  beforeEach(async () => {
    tdb = await freshDatabase(kind);
    db = openDatabase(tdb.url);
    await migrate(db);
    await db('realms').insert({ id: REALM, display_name: 'Default', settings: '{}', revision: 1, created_at: NOW, updated_at: NOW });
    for (const id of [USER, OTHER]) {
      await db('users').insert({ id, realm_id: REALM, email: `${id}@example.org`, email_normalized: `${id}@example.org`, created_at: NOW, updated_at: NOW });
    }
    box = new SecretBox('test-secret-for-totp-tests-0123456789');
    totp = new TotpService(db, box, { issuerName: 'Latchkey Test' });
  });

  afterEach(async () => {
    await db.destroy();
    await tdb.drop();
  });

  /** Enrols and confirms USER two minutes before NOW; returns the secret. */
  async function enrol(userId = USER): Promise<string> {
    const at = NOW - 120_000;
    const { secret } = await totp.startEnrolment(REALM, userId, `${userId}@example.org`, 'Example', { now: at });
    expect(await totp.confirmEnrolment(REALM, userId, codeAt(secret, at), at)).toBe(true);
    return secret;
  }

  it('starts an enrolment with a base32 secret, an otpauth URI and a server-rendered SVG QR code', async () => {
    const e = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example Corp', { now: NOW });
    expect(e.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(e.uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(e.uri.startsWith('otpauth://totp/')).toBe(true);
    expect(uri.searchParams.get('secret')).toBe(e.secret);
    expect(uri.searchParams.get('issuer')).toBe('Example Corp');
    expect(decodeURIComponent(e.uri)).toContain('alice@example.org');
    expect(e.qrSvg.startsWith('<svg')).toBe(true);
    expect(e.qrSvg).toContain('</svg>');

    const falls = await totp.startEnrolment(REALM, OTHER, 'bob@example.org', '', { now: NOW });
    expect(new URL(falls.uri).searchParams.get('issuer')).toBe('Latchkey Test');
  });

  it('stores the secret sealed, never in the clear', async () => {
    const { secret } = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW });
    const row = await db('totp_factors').where({ user_id: USER }).first();
    expect(row.secret).not.toContain(secret);
    expect(row.secret.toLowerCase()).not.toContain(secret.toLowerCase());
    expect(row.secret.startsWith('v1.')).toBe(true);
    expect(box.open(row.secret, `totp:${USER}`)).toBe(secret);
    expect(() => box.open(row.secret, `totp:${OTHER}`)).toThrow();
    expect(row.confirmed_at).toBeNull();
    expect(Number(row.last_used_step)).toBe(-1);
  });

  it('refuses codes before confirmation, confirms with a good code and consumes its step', async () => {
    const { secret } = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW });
    expect(await totp.isEnrolled(REALM, USER)).toBe(false);
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW), NOW)).toEqual({ ok: false, reason: 'not_enrolled' });
    expect(await totp.confirmEnrolment(REALM, USER, wrongCode(secret, STEP), NOW)).toBe(false);
    expect(await totp.confirmEnrolment(REALM, USER, codeAt(secret, NOW), NOW)).toBe(true);
    expect(await totp.isEnrolled(REALM, USER)).toBe(true);
    // The confirming code cannot be replayed, and confirming twice does nothing.
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW), NOW)).toEqual({ ok: false, reason: 'reused' });
    expect(await totp.confirmEnrolment(REALM, USER, codeForStep(secret, STEP + 1), NOW)).toBe(false);
    const row = await db('totp_factors').where({ user_id: USER }).first();
    expect(Number(row.confirmed_at)).toBe(NOW);
    expect(Number(row.last_used_step)).toBe(STEP);
  });

  it('reports not_enrolled for users without a factor and for another realm', async () => {
    expect(await totp.verify(REALM, OTHER, '123456', NOW)).toEqual({ ok: false, reason: 'not_enrolled' });
    const secret = await enrol();
    expect(await totp.verify('elsewhere', USER, codeAt(secret, NOW), NOW)).toEqual({ ok: false, reason: 'not_enrolled' });
    expect(await totp.isEnrolled('elsewhere', USER)).toBe(false);
  });

  it('accepts the current code once, then reports it reused', async () => {
    const secret = await enrol();
    const code = codeAt(secret, NOW);
    expect(await totp.verify(REALM, USER, code, NOW)).toEqual({ ok: true });
    expect(await totp.verify(REALM, USER, code, NOW)).toEqual({ ok: false, reason: 'reused' });
    expect(await totp.verify(REALM, USER, code, NOW + 5_000)).toEqual({ ok: false, reason: 'reused' });
    // The next step's code is fresh.
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW + 30_000), NOW + 30_000)).toEqual({ ok: true });
  });

  it('accepts codes one step either side once, and nothing two steps away', async () => {
    const secret = await enrol();
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP - 2), NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP + 2), NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP - 1), NOW)).toEqual({ ok: true });
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP - 1), NOW)).toEqual({ ok: false, reason: 'reused' });
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP + 1), NOW)).toEqual({ ok: true });
    // Once a later step is used, earlier ones count as used too.
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP), NOW)).toEqual({ ok: false, reason: 'reused' });
    expect(await totp.verify(REALM, USER, codeForStep(secret, STEP + 1), NOW)).toEqual({ ok: false, reason: 'reused' });
  });

  it('ignores spaces in codes and rejects malformed ones as invalid', async () => {
    const secret = await enrol();
    const code = codeAt(secret, NOW);
    for (const bad of ['', '12345', '1234567', 'abcdef', '12-34-56']) {
      expect(await totp.verify(REALM, USER, bad, NOW)).toEqual({ ok: false, reason: 'invalid' });
    }
    await db('login_throttle').delete();
    expect(await totp.verify(REALM, USER, ` ${code.slice(0, 3)} ${code.slice(3)} `, NOW)).toEqual({ ok: true });
  });

  it('rate-limits a user after five failures, for five minutes', async () => {
    const secret = await enrol();
    const wrong = wrongCode(secret, STEP);
    for (let i = 0; i < 5; i++) {
      expect(await totp.verify(REALM, USER, wrong, NOW + i * 1000)).toEqual({ ok: false, reason: 'invalid' });
    }
    const limited = await totp.verify(REALM, USER, codeAt(secret, NOW + 5000), NOW + 5000);
    expect(limited).toMatchObject({ ok: false, reason: 'rate_limited' });
    expect((limited as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThan(0);
    // Another user is unaffected.
    const other = await enrol(OTHER);
    expect(await totp.verify(REALM, OTHER, codeAt(other, NOW + 5000), NOW + 5000)).toEqual({ ok: true });
    // After the lock the right code works, and success forgets the failures.
    const later = NOW + 4000 + 300_000;
    expect(await totp.verify(REALM, USER, codeAt(secret, later), later)).toEqual({ ok: true });
    expect(await db('login_throttle').where({ realm_id: REALM, key: totpThrottleKey(USER) }).first()).toBeUndefined();
  });

  it('counts failures towards the limit only until a success', async () => {
    const secret = await enrol();
    const wrong = wrongCode(secret, STEP);
    for (let i = 0; i < 4; i++) expect((await totp.verify(REALM, USER, wrong, NOW)).ok).toBe(false);
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW), NOW)).toEqual({ ok: true });
    for (let i = 0; i < 4; i++) expect(await totp.verify(REALM, USER, wrong, NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW + 30_000), NOW + 30_000)).toEqual({ ok: true });
  });

  it('limits confirmation attempts too', async () => {
    const { secret } = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW });
    const wrong = wrongCode(secret, STEP);
    for (let i = 0; i < 5; i++) expect(await totp.confirmEnrolment(REALM, USER, wrong, NOW)).toBe(false);
    expect(await totp.confirmEnrolment(REALM, USER, codeAt(secret, NOW), NOW)).toBe(false);
    // and says why, with the wait left
    expect(await totp.tryConfirmEnrolment(REALM, USER, codeAt(secret, NOW), NOW + 60_000)).toEqual({ ok: false, reason: 'rate_limited', retryAfterSeconds: 240 });
    expect(await totp.isEnrolled(REALM, USER)).toBe(false);
  });

  it('lets exactly one of several concurrent verifications of the same code succeed', async () => {
    const secret = await enrol();
    // PostgreSQL: a second connection pool, as a second instance would have. SQLite: better-sqlite3
    // blocks the event loop while waiting for a lock held by another connection of the same process,
    // so both services share the single connection; their reads still interleave before either claims.
    const db2 = kind === 'postgres' ? openDatabase(tdb.url) : db;
    // Hold every claim until all four verifications have read the factor and checked the code, then
    // let them race: only the conditional update can tell them apart.
    const realClaim = factorsRepo.claimTotpStep.bind(factorsRepo);
    let arrived = 0;
    let releaseAll!: () => void;
    const allArrived = new Promise<void>((resolve) => (releaseAll = resolve));
    const claim = vi.spyOn(factorsRepo, 'claimTotpStep').mockImplementation(async (...args) => {
      if (++arrived === 4) releaseAll();
      await allArrived;
      return realClaim(...args);
    });
    try {
      const second = new TotpService(db2, box);
      const code = codeAt(secret, NOW);
      const results = await Promise.all([
        totp.verify(REALM, USER, code, NOW),
        second.verify(REALM, USER, code, NOW),
        totp.verify(REALM, USER, code, NOW),
        second.verify(REALM, USER, code, NOW),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      for (const r of results.filter((r) => !r.ok)) expect(r).toEqual({ ok: false, reason: 'reused' });
      expect(claim).toHaveBeenCalledTimes(4);
    } finally {
      claim.mockRestore();
      if (db2 !== db) await db2.destroy();
    }
  });

  it('replaces a pending enrolment but a confirmed one only when asked to', async () => {
    const first = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW });
    const second = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW });
    expect(second.secret).not.toBe(first.secret);
    expect(await totp.confirmEnrolment(REALM, USER, codeAt(first.secret, NOW), NOW)).toBe(false);
    expect(await totp.confirmEnrolment(REALM, USER, codeAt(second.secret, NOW), NOW)).toBe(true);

    await expect(totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW })).rejects.toMatchObject({ code: 'conflict' });
    expect(await totp.isEnrolled(REALM, USER)).toBe(true);
    expect(await totp.verify(REALM, USER, codeAt(second.secret, NOW + 30_000), NOW + 30_000)).toEqual({ ok: true });

    const third = await totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { replace: true, now: NOW });
    expect(await totp.isEnrolled(REALM, USER)).toBe(false);
    const later = NOW + 60_000;
    expect(await totp.confirmEnrolment(REALM, USER, codeAt(third.secret, later), later)).toBe(true);
    expect(await totp.verify(REALM, USER, codeAt(second.secret, later + 30_000), later + 30_000)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('starts enrolments running at once without a false "already set up" (a double-clicked set-up link)', async () => {
    const db2 = kind === 'postgres' ? openDatabase(tdb.url) : db;
    try {
      const second = new TotpService(db2, box);
      await Promise.all([totp.startEnrolment(REALM, OTHER, 'o@example.org', 'Example', { now: NOW }), second.startEnrolment(REALM, OTHER, 'o@example.org', 'Example', { now: NOW })]);
      for (let round = 0; round < 3; round++) {
        const started = await Promise.allSettled([
          totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW }),
          second.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW }),
          totp.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW }),
          second.startEnrolment(REALM, USER, 'alice@example.org', 'Example', { now: NOW }),
        ]);
        expect(started.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason?.message), `round ${round}`).toEqual([]);
        expect(await db('totp_factors').where({ user_id: USER }).count({ n: '*' }).first().then((r) => Number(r!.n))).toBe(1);
      }
    } finally {
      if (db2 !== db) await db2.destroy();
    }
  });

  it('removes a factor', async () => {
    const secret = await enrol();
    expect(await totp.remove(REALM, USER)).toBe(true);
    expect(await totp.remove(REALM, USER)).toBe(false);
    expect(await totp.isEnrolled(REALM, USER)).toBe(false);
    expect(await totp.verify(REALM, USER, codeAt(secret, NOW), NOW)).toEqual({ ok: false, reason: 'not_enrolled' });
  });
});
