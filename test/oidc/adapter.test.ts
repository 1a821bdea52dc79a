import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Db } from '../../src/db/knex.js';
import { payloadsRepo } from '../../src/db/payloads-repo.js';
import { createAdapterClass } from '../../src/oidc/adapter.js';
import { describeEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/databases.js';

describeEachDatabase('the node-oidc-provider adapter', (kind) => {
  let migrated: Awaited<ReturnType<typeof migratedDatabase>>;
  let database: TestDatabase;
  let db: Db;
  const clients = { find: async (realmId: string, id: string) => (id === 'known' ? { client_id: `${realmId}:${id}` } : undefined) };

  beforeAll(async () => {
    migrated = await migratedDatabase(kind);
    ({ database, db } = migrated);
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('stores, finds by id, uid and user code, and keeps realms apart', async () => {
    const A = createAdapterClass(db, 'realm-a', clients);
    const B = createAdapterClass(db, 'realm-b', clients);
    await new A('Session').upsert('s1', { uid: 'u1', accountId: 'acc' } as any, 60);
    await new A('DeviceCode').upsert('d1', { userCode: 'ABCD-EFGH', grantId: 'g1' } as any, 60);
    expect(await new A('Session').find('s1')).toMatchObject({ uid: 'u1', accountId: 'acc' });
    expect(await new A('Session').findByUid('u1')).toMatchObject({ accountId: 'acc' });
    expect(await new A('DeviceCode').findByUserCode('ABCD-EFGH')).toMatchObject({ grantId: 'g1' });
    expect(await new B('Session').find('s1')).toBeUndefined();
    expect(await new A('AccessToken').find('s1')).toBeUndefined();
  });

  it('marks consumed rows and revokes everything of a grant', async () => {
    const A = createAdapterClass(db, 'realm-a', clients);
    await new A('AuthorizationCode').upsert('c1', { grantId: 'g2' } as any, 60);
    await new A('RefreshToken').upsert('r1', { grantId: 'g2' } as any, 60);
    await new A('AccessToken').upsert('a1', { grantId: 'g3' } as any, 60);
    await new A('AuthorizationCode').consume('c1');
    expect(((await new A('AuthorizationCode').find('c1')) as any).consumed).toEqual(expect.any(Number));
    await new A('RefreshToken').revokeByGrantId('g2');
    expect(await new A('AuthorizationCode').find('c1')).toBeUndefined();
    expect(await new A('RefreshToken').find('r1')).toBeUndefined();
    expect(await new A('AccessToken').find('a1')).toBeDefined();
    await new A('AccessToken').destroy('a1');
    expect(await new A('AccessToken').find('a1')).toBeUndefined();
  });

  it('ignores expired rows on read and purges them', async () => {
    const A = createAdapterClass(db, 'realm-a', clients);
    await new A('Interaction').upsert('old', { uid: 'x' } as any, 60);
    await db('oidc_payloads').where({ id: 'old' }).update({ expires_at: Date.now() - 1000 });
    expect(await new A('Interaction').find('old')).toBeUndefined();
    expect(await db('oidc_payloads').where({ id: 'old' }).first()).toBeDefined();
    expect(await payloadsRepo.purgeExpired(db, Date.now())).toBeGreaterThanOrEqual(1);
    expect(await db('oidc_payloads').where({ id: 'old' }).first()).toBeUndefined();
  });

  it('reads clients from the realm\'s clients and never writes them', async () => {
    const A = createAdapterClass(db, 'realm-a', clients);
    expect(await new A('Client').find('known')).toEqual({ client_id: 'realm-a:known' });
    expect(await new A('Client').find('unknown')).toBeUndefined();
    await expect(new A('Client').upsert('x', {} as any, 0)).rejects.toThrow(/CLI/);
  });
});
