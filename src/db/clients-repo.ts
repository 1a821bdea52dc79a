import type { Db } from './knex.js';

export interface ClientRow {
  clientId: string;
  realmId: string;
  name: string;
  metadata: Record<string, unknown>;
  secretHash: string | null;
  firstParty: boolean;
  createdAt: number;
  updatedAt: number;
}

const toClient = (r: any): ClientRow => ({
  clientId: r.client_id,
  realmId: r.realm_id,
  name: r.name,
  metadata: JSON.parse(r.metadata),
  secretHash: r.secret_hash ?? null,
  firstParty: Boolean(r.first_party),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const clientsRepo = {
  async find(db: Db, realmId: string, clientId: string): Promise<ClientRow | undefined> {
    const row = await db('clients').where({ realm_id: realmId, client_id: clientId }).first();
    return row ? toClient(row) : undefined;
  },
  async list(db: Db, realmId: string): Promise<ClientRow[]> {
    return (await db('clients').where({ realm_id: realmId }).orderBy('created_at')).map(toClient);
  },
  async insert(db: Db, c: ClientRow): Promise<void> {
    await db('clients').insert({
      client_id: c.clientId,
      realm_id: c.realmId,
      name: c.name,
      metadata: JSON.stringify(c.metadata),
      secret_hash: c.secretHash,
      first_party: c.firstParty,
      created_at: c.createdAt,
      updated_at: c.updatedAt,
    });
  },
  /** Writes a client's name, metadata, secret hash, first-party flag and update time. */
  async update(db: Db, c: ClientRow): Promise<void> {
    await db('clients')
      .where({ realm_id: c.realmId, client_id: c.clientId })
      .update({ name: c.name, metadata: JSON.stringify(c.metadata), secret_hash: c.secretHash, first_party: c.firstParty, updated_at: c.updatedAt });
  },
  async delete(db: Db, realmId: string, clientId: string): Promise<void> {
    await db('clients').where({ realm_id: realmId, client_id: clientId }).delete();
  },
};
