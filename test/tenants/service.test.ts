import { afterEach, beforeEach, expect, it } from 'vitest';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { TenantService } from '../../src/tenants/service.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

const REALM = 'default';
const T0 = 1_900_000_000_000;

describeEachDatabase('TenantService', (kind) => {
  let tdb: TestDatabase;
  let db: Db;
  let tenants: TenantService;
  const count = async (table: string) => Number(((await db(table).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

  beforeEach(async () => {
    tdb = await freshDatabase(kind);
    db = openDatabase(tdb.url);
    await migrate(db);
    for (const id of [REALM, 'other']) await db('realms').insert({ id, display_name: id, settings: '{}', revision: 1, created_at: T0, updated_at: T0 });
    for (const [id, email] of [['u-ann', 'ann@acme.test'], ['u-bob', 'bob@globex.test'], ['u-cy', 'cy@gmail.test']]) {
      await db('users').insert({ id, realm_id: REALM, email, email_normalized: email, created_at: T0, updated_at: T0 });
    }
    for (const id of ['acme-okta', 'acme-entra', 'globex-oidc']) {
      await db('connections').insert({ realm_id: REALM, id, type: 'oidc', display_name: id.toUpperCase(), config: '{}', enabled: true, created_at: T0, updated_at: T0 });
    }
    tenants = new TenantService(db);
  });

  afterEach(async () => {
    await db.destroy();
    await tdb.drop();
  });

  it('creates a tenant with normalised domains, connections, SSO and branding, and reads it back', async () => {
    const t = await tenants.create(REALM, {
      id: 'acme',
      displayName: ' Acme Corp ',
      domains: ['ACME.test', '@mail.Acme.test', 'acme.test'],
      connections: ['acme-okta'],
      ssoEnforced: true,
      branding: { logoUrl: 'https://acme.test/logo.svg', primaryColor: '#aa3300' },
    });
    expect(t).toMatchObject({ id: 'acme', realm: REALM, display_name: 'Acme Corp', domains: ['acme.test', 'mail.acme.test'], connections: ['acme-okta'], sso_enforced: true, branding: { logoUrl: 'https://acme.test/logo.svg', primaryColor: '#aa3300' } });
    expect(await tenants.get(REALM, 'acme')).toEqual(t);
    await tenants.create(REALM, { id: 'globex', displayName: 'Globex' });
    expect((await tenants.list(REALM)).map((x) => x.id)).toEqual(['acme', 'globex']);
    expect(await tenants.list('other')).toEqual([]);
    expect(await tenants.connectionIdsOf(REALM, 'acme')).toEqual(['acme-okta']);
  });

  it('refuses bad input with an error naming it, and writes nothing', async () => {
    const cases: Array<[Parameters<TenantService['create']>[1], RegExp, string]> = [
      [{ id: 'Acme Corp', displayName: 'A' }, /tenant id "Acme Corp" must be a lower-case slug/, 'invalid_input'],
      [{ id: 'acme', displayName: '' }, /displayName: is required/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', domains: ['acme.test', 'not a domain'] }, /"not a domain" is not a valid email domain/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', domains: ['localhost'] }, /"localhost" is not a valid email domain/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', branding: { primaryColor: 'red' } }, /branding.primaryColor: must be a colour like #2f5bea/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', branding: { logoUrl: 'not a url' } }, /branding.logoUrl/, 'invalid_input'],
      // shown as an image on the sign-in pages, which drop anything but http(s): refused rather than lost
      [{ id: 'acme', displayName: 'A', branding: { logoUrl: 'javascript:alert(1)' } }, /branding.logoUrl/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', branding: { logoUrl: 'data:image/svg+xml,<svg/>' } }, /branding.logoUrl/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', branding: { logoUrl: `https://acme.test/${'a'.repeat(2000)}` } }, /branding.logoUrl: is 2018 characters long; at most 2000 are allowed/, 'invalid_input'],
      [{ id: 'acme', displayName: 'A', domains: ['acme.test'], connections: ['acme-okta', 'nope'] }, /connection "nope" in realm "default" does not exist/, 'not_found'],
    ];
    for (const [input, message, code] of cases) {
      await expect(tenants.create(REALM, input)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    }
    await expect(tenants.create('missing', { id: 'acme', displayName: 'A' })).rejects.toMatchObject({ code: 'not_found', message: 'realm "missing" does not exist' });
    for (const table of ['tenants', 'tenant_domains', 'tenant_connections']) expect(await count(table), table).toBe(0);
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme' });
    await expect(tenants.create(REALM, { id: 'acme', displayName: 'Again', domains: ['x.test'] })).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining('tenant "acme" already exists') });
    expect(await count('tenant_domains')).toBe(0);
  });

  it('updates in one transaction: a bad connection leaves the tenant as it was', async () => {
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme', domains: ['acme.test'], connections: ['acme-okta'] });
    await expect(tenants.update(REALM, 'acme', { displayName: 'Renamed', domains: ['new.test'], connections: ['ghost'] })).rejects.toMatchObject({ code: 'not_found' });
    expect(await tenants.get(REALM, 'acme')).toMatchObject({ display_name: 'Acme', domains: ['acme.test'], connections: ['acme-okta'] });
    const t = await tenants.update(REALM, 'acme', { displayName: 'Acme Inc', domains: ['acme.test', 'acme.example'], connections: ['acme-okta', 'acme-entra'], ssoEnforced: true });
    expect(t).toMatchObject({ display_name: 'Acme Inc', domains: ['acme.example', 'acme.test'], connections: ['acme-entra', 'acme-okta'], sso_enforced: true });
    await expect(tenants.update(REALM, 'nope', { displayName: 'x' })).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining('tenant "nope"') });
  });

  it('adds members by email or id (idempotently), removes them, and refuses unknown users and tenants', async () => {
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme' });
    await tenants.create(REALM, { id: 'globex', displayName: 'Globex' });
    expect(await tenants.addMember(REALM, 'acme', { email: 'ANN@acme.test' })).toEqual({ tenant: 'acme', user: 'u-ann', email: 'ann@acme.test' });
    await tenants.addMember(REALM, 'acme', { userId: 'u-ann' });
    await tenants.addMember(REALM, 'globex', { email: 'ann@acme.test' });
    expect(await count('tenant_members')).toBe(2);
    expect((await tenants.tenantsOfUser(REALM, 'u-ann')).map((t) => t.id)).toEqual(['acme', 'globex']);
    expect(await tenants.isMember(REALM, 'globex', 'u-ann')).toBe(true);
    await expect(tenants.addMember(REALM, 'acme', { email: 'ghost@acme.test' })).rejects.toMatchObject({ code: 'not_found', message: 'user ghost@acme.test in realm "default" does not exist' });
    await expect(tenants.addMember(REALM, 'nope', { email: 'ann@acme.test' })).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining('tenant "nope"') });
    await expect(tenants.addMember(REALM, 'acme', {})).rejects.toMatchObject({ code: 'invalid_input' });
    expect(await tenants.removeMember(REALM, 'globex', { email: 'ann@acme.test' })).toEqual({ tenant: 'globex', user: 'u-ann', removed: true });
    expect(await tenants.removeMember(REALM, 'globex', { email: 'ann@acme.test' })).toEqual({ tenant: 'globex', user: 'u-ann', removed: false });
    expect((await tenants.tenantsOfUser(REALM, 'u-ann')).map((t) => t.id)).toEqual(['acme']);
  });

  it('finds the tenants of an email by membership and by domain', async () => {
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme', domains: ['acme.test'] });
    await tenants.create(REALM, { id: 'globex', displayName: 'Globex', domains: ['globex.test'] });
    await tenants.create(REALM, { id: 'initech', displayName: 'Initech' });
    await tenants.addMember(REALM, 'initech', { email: 'ann@acme.test' });
    const ann = await tenants.tenantsForEmail(REALM, 'Ann@ACME.test');
    expect(ann.map((t) => [t.id, t.member])).toEqual([['acme', false], ['initech', true]]);
    // an unknown address of a tenant's domain still finds the tenant (the domain is public); nobody else's
    expect((await tenants.tenantsForEmail(REALM, 'new@globex.test')).map((t) => t.id)).toEqual(['globex']);
    expect(await tenants.tenantsForEmail(REALM, 'cy@gmail.test')).toEqual([]);
  });

  it('decides which connections a sign-in may use', async () => {
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme', connections: ['acme-okta'] });
    await tenants.create(REALM, { id: 'globex', displayName: 'Globex', connections: ['globex-oidc'] });
    await db('connections').where({ id: 'acme-entra' }).update({ enabled: false });
    expect(await tenants.resolveConnection(REALM, 'acme-okta')).toEqual({ tenantId: 'acme' });
    expect(await tenants.resolveConnection(REALM, 'acme-okta', 'acme')).toEqual({ tenantId: 'acme' });
    expect(await tenants.resolveConnection(REALM, 'acme-okta', 'globex')).toBeUndefined();
    expect(await tenants.resolveConnection(REALM, 'acme-entra')).toBeUndefined();
    expect(await tenants.resolveConnection(REALM, 'ghost')).toBeUndefined();
    expect(await tenants.connectionsOf(REALM, 'acme')).toEqual([{ id: 'acme-okta', displayName: 'ACME-OKTA' }]);
  });

  it('deletes a tenant with its domains, members and connections', async () => {
    await tenants.create(REALM, { id: 'acme', displayName: 'Acme', domains: ['acme.test'], connections: ['acme-okta'] });
    await tenants.addMember(REALM, 'acme', { email: 'ann@acme.test' });
    expect(await tenants.delete(REALM, 'acme')).toEqual({ deleted: 'acme' });
    for (const table of ['tenants', 'tenant_domains', 'tenant_members', 'tenant_connections']) expect(await count(table), table).toBe(0);
    expect(await count('connections')).toBe(3);
    await expect(tenants.delete(REALM, 'acme')).rejects.toMatchObject({ code: 'not_found' });
  });
});
