import type { Db } from './knex.js';

export interface RealmRow {
  id: string;
  displayName: string;
  settings: Record<string, unknown>;
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export interface IssuerRow {
  issuer: string;
  realmId: string;
  host: string;
  isPrimary: boolean;
  createdAt: number;
}

const toRealm = (r: any): RealmRow => ({
  id: r.id,
  displayName: r.display_name,
  settings: typeof r.settings === 'string' ? JSON.parse(r.settings) : r.settings ?? {},
  revision: Number(r.revision),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const toIssuer = (r: any): IssuerRow => ({
  issuer: r.issuer,
  realmId: r.realm_id,
  host: r.host,
  isPrimary: Boolean(r.is_primary),
  createdAt: Number(r.created_at),
});

export const realmsRepo = {
  async find(db: Db, id: string): Promise<RealmRow | undefined> {
    const row = await db('realms').where({ id }).first();
    return row ? toRealm(row) : undefined;
  },
  async list(db: Db): Promise<RealmRow[]> {
    return (await db('realms').orderBy('id')).map(toRealm);
  },
  async revisions(db: Db): Promise<Array<{ id: string; revision: number }>> {
    return (await db('realms').select('id', 'revision')).map((r: any) => ({ id: r.id, revision: Number(r.revision) }));
  },
  async insert(db: Db, realm: { id: string; displayName: string; settings: Record<string, unknown> }, at: number): Promise<void> {
    await db('realms').insert({
      id: realm.id,
      display_name: realm.displayName,
      settings: JSON.stringify(realm.settings),
      revision: 1,
      created_at: at,
      updated_at: at,
    });
  },
  async updateSettings(db: Db, id: string, displayName: string, settings: Record<string, unknown>, at: number): Promise<void> {
    await db('realms')
      .where({ id })
      .update({ display_name: displayName, settings: JSON.stringify(settings), updated_at: at, revision: db.raw('revision + 1') });
  },
  /** Marks a realm changed so every instance rebuilds what it cached for it. */
  async bumpRevision(db: Db, id: string, at: number): Promise<void> {
    await db('realms').where({ id }).update({ revision: db.raw('revision + 1'), updated_at: at });
  },
  async issuers(db: Db, realmId?: string): Promise<IssuerRow[]> {
    const q = db('realm_issuers').orderBy([{ column: 'realm_id' }, { column: 'created_at' }, { column: 'issuer' }]);
    if (realmId) q.where({ realm_id: realmId });
    return (await q).map(toIssuer);
  },
  async findIssuerByHost(db: Db, host: string): Promise<IssuerRow | undefined> {
    const row = await db('realm_issuers').where({ host }).first();
    return row ? toIssuer(row) : undefined;
  },
  async insertIssuer(db: Db, issuer: Omit<IssuerRow, 'createdAt'>, at: number): Promise<void> {
    await db('realm_issuers').insert({
      issuer: issuer.issuer,
      realm_id: issuer.realmId,
      host: issuer.host,
      is_primary: issuer.isPrimary,
      created_at: at,
    });
  },
};
