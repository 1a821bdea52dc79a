import { afterAll, beforeAll, expect, it, describe } from 'vitest';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { recordGrantTenant, tenantOfGrant } from '../../src/tenants/grant-tenant.js';
import { TenantService } from '../../src/tenants/service.js';
import { freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { nextTurn } from '../helpers/event-loop.js';

const REALM = 'default';

describe('tenantOfGrant (src/tenants/grant-tenant.ts)', () => {
  let tdb: TestDatabase;
  let db: Db;
  let tenants: TenantService;
  /** How often the database was asked, through the real service. */
  let reads = 0;

  beforeAll(async () => {
    tdb = await freshDatabase('sqlite');
    db = openDatabase(tdb.url);
    await migrate(db);
    await db('realms').insert({ id: REALM, display_name: REALM, settings: '{}', revision: 1, created_at: 0, updated_at: 0 });
    tenants = new TenantService(db);
    for (const id of ['acme', 'globex']) await tenants.create(REALM, { id, displayName: id });
    const read = tenants.grantTenant.bind(tenants);
    tenants.grantTenant = (realmId, grantId) => {
      reads++;
      return read(realmId, grantId);
    };
  });
  afterAll(async () => {
    await db?.destroy();
    await tdb?.drop();
  });

  it('asks the database once per turn of the event loop and grant, and again in the next turn', async () => {
    await recordGrantTenant(tenants, REALM, 'grant-1', 'acme');
    await nextTurn();
    reads = 0;
    const [a, b] = await Promise.all([tenantOfGrant(tenants, REALM, 'grant-1'), tenantOfGrant(tenants, REALM, 'grant-1')]);
    expect([a, b]).toEqual(['acme', 'acme']);
    expect(await tenantOfGrant(tenants, 'other-realm', 'grant-1')).toBeUndefined();
    expect(reads).toBe(2);
    await nextTurn();
    expect(await tenantOfGrant(tenants, REALM, 'grant-1')).toBe('acme');
    expect(reads).toBe(3);
  });

  it('a new tenant recorded for the grant is seen at once, in the same turn', async () => {
    await nextTurn();
    expect(await tenantOfGrant(tenants, REALM, 'grant-2')).toBeUndefined();
    await recordGrantTenant(tenants, REALM, 'grant-2', 'globex');
    expect(await tenantOfGrant(tenants, REALM, 'grant-2')).toBe('globex');
    await recordGrantTenant(tenants, REALM, 'grant-2', null);
    expect(await tenantOfGrant(tenants, REALM, 'grant-2')).toBeUndefined();
  });

  it('with a request object, once per request even across turns', async () => {
    await nextTurn();
    reads = 0;
    const request = {};
    expect(await tenantOfGrant(tenants, REALM, 'grant-1', request)).toBe('acme');
    await nextTurn();
    expect(await tenantOfGrant(tenants, REALM, 'grant-1', request)).toBe('acme');
    expect(reads).toBe(1);
    expect(await tenantOfGrant(tenants, REALM, undefined, request)).toBeUndefined();
    expect(reads).toBe(1);
  });
});
