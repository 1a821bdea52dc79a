import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate, migrationConfig, migrationStatus, openDatabase, type Db } from '../../src/db/knex.js';
import { payloadsRepo } from '../../src/db/payloads-repo.js';
import { createAdapterClass } from '../../src/oidc/adapter.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

/**
 * migrations/20261205000001_payload_account.js: Session and Grant rows carry their account in an indexed
 * `account_id` column. Rows written before the migration (without the column) are filled in by it, in
 * batches; the adapter writes the column from then on, for those two models only.
 */
describeEachDatabase('the account index of stored sessions and grants', (kind) => {
  let database: TestDatabase;
  let db: Db;
  const clients = { find: async () => undefined };
  const MIGRATION = '20261205000001_payload_account';

  beforeAll(async () => {
    database = await freshDatabase(kind);
    db = openDatabase(database.url);
    // every migration before this one
    for (;;) {
      const { pending } = await migrationStatus(db);
      expect(pending.length).toBeGreaterThan(0);
      if (pending[0]!.startsWith(MIGRATION)) break;
      await db.migrate.up(migrationConfig());
    }
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  it('fills in account_id for the rows written before it, and the account lookups find them', async () => {
    const now = Date.now();
    const row = (model: string, id: string, payload: unknown, extra: Record<string, unknown> = {}) => ({
      realm_id: 'default',
      model,
      id,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      expires_at: now + 3_600_000,
      ...extra,
    });
    // more sessions than one batch of the backfill (500), written as the adapter wrote them before
    const rows = [];
    for (let i = 0; i < 1203; i++) rows.push(row('Session', `s-${String(i).padStart(5, '0')}`, { accountId: i % 2 ? 'ada' : 'bob', uid: `u-${i}`, loginTs: 1 }, { uid: `u-${i}` }));
    rows.push(row('Grant', 'g-ada', { accountId: 'ada', clientId: 'app' }));
    rows.push(row('Grant', 'g-other-realm', { accountId: 'ada', clientId: 'app' }, { realm_id: 'other' }));
    rows.push(row('AccessToken', 'at-ada', { accountId: 'ada', grantId: 'g-ada' }, { grant_id: 'g-ada' }));
    rows.push(row('Session', 's-broken', '{not json'));
    rows.push(row('Session', 's-anonymous', { uid: 'u-anon' }));
    for (let i = 0; i < rows.length; i += 100) await db('oidc_payloads').insert(rows.slice(i, i + 100));

    // this one first, then any that came after it
    expect((await migrate(db))[0]).toBe(`${MIGRATION}.js`);

    const ada = await payloadsRepo.sessionsOf(db, 'default', 'ada', now);
    expect(ada).toHaveLength(601);
    expect(ada.every((r) => r.payload.accountId === 'ada')).toBe(true);
    expect(await payloadsRepo.sessionsOf(db, 'default', 'bob', now)).toHaveLength(602);
    expect((await payloadsRepo.grantsOf(db, 'default', 'ada', now)).map((g) => g.id)).toEqual(['g-ada']);
    expect((await payloadsRepo.grantsOf(db, 'other', 'ada', now)).map((g) => g.id)).toEqual(['g-other-realm']);
    const column = async (model: string, id: string) => ((await db('oidc_payloads').where({ model, id }).first()) as { account_id: string | null }).account_id;
    // tokens are found by their grant, not by account; unreadable or account-less sessions stay null
    expect(await column('AccessToken', 'at-ada')).toBeNull();
    expect(await column('Session', 's-broken')).toBeNull();
    expect(await column('Session', 's-anonymous')).toBeNull();

    // signing out everywhere goes through the index: all of ada's sessions and her grant, nobody else's
    const out = await payloadsRepo.signOutEverywhere(db, 'default', 'ada', 'u-1');
    expect(out.sessions).toBe(600);
    expect(out.grants).toBe(1);
    expect((await payloadsRepo.sessionsOf(db, 'default', 'ada', now)).map((r) => r.uid)).toEqual(['u-1']);
    expect(await payloadsRepo.sessionsOf(db, 'default', 'bob', now)).toHaveLength(602);
    expect(await db('oidc_payloads').where({ model: 'AccessToken', id: 'at-ada' }).first()).toBeUndefined();
    expect(await payloadsRepo.grantsOf(db, 'other', 'ada', now)).toHaveLength(1);
  });

  it('the adapter writes account_id for Session and Grant rows only, and keeps it up to date', async () => {
    const A = createAdapterClass(db, 'realm-x', clients);
    await new A('Session').upsert('sx', { uid: 'ux', accountId: 'cy' } as any, 60);
    await new A('Grant').upsert('gx', { accountId: 'cy', clientId: 'app' } as any, 60);
    await new A('RefreshToken').upsert('rx', { accountId: 'cy', grantId: 'gx' } as any, 60);
    const column = async (model: string, id: string) => ((await db('oidc_payloads').where({ realm_id: 'realm-x', model, id }).first()) as { account_id: string | null }).account_id;
    expect(await column('Session', 'sx')).toBe('cy');
    expect(await column('Grant', 'gx')).toBe('cy');
    expect(await column('RefreshToken', 'rx')).toBeNull();
    // a session signed in as another account moves to it
    await new A('Session').upsert('sx', { uid: 'ux', accountId: 'dee' } as any, 60);
    expect(await column('Session', 'sx')).toBe('dee');
    expect(await payloadsRepo.sessionsOf(db, 'realm-x', 'cy', Date.now())).toHaveLength(0);
    expect((await payloadsRepo.sessionsOf(db, 'realm-x', 'dee', Date.now())).map((r) => r.uid)).toEqual(['ux']);
  });
});
