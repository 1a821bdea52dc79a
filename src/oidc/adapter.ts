import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/knex.js';
import { payloadsRepo } from '../db/payloads-repo.js';
import { heldInteraction } from './held-interactions.js';

/**
 * Whether a key could have been stored: the provider hands over ids, codes, tokens and client ids as they
 * arrive in requests, and one holding a NUL was never written (PostgreSQL refuses such text, even in a
 * comparison, which would make the request a server error). It is simply not found.
 */
const storable = (key: string): boolean => !key.includes('\u0000');

const LABELS: Record<string, string> = { AuthorizationCode: 'authorization code', RefreshToken: 'refresh token', DeviceCode: 'device code' };

export interface ClientSource {
  /** Returns node-oidc-provider client metadata, or undefined for an unknown client. */
  find(realmId: string, clientId: string): Promise<AdapterPayload | undefined>;
}

/**
 * One adapter for every node-oidc-provider model, bound to a realm: rows carry the realm id,
 * indexed uid / grantId / userCode / expiresAt columns, and expired rows are invisible.
 * Clients come from the realm's clients table and are read-only here.
 */
export function createAdapterClass(db: Db, realmId: string, clients: ClientSource, issuer?: string): new (name: string) => Adapter {
  // Known clients, kept for the life of this class, i.e. of the realm's provider instance: the provider is
  // rebuilt whenever the realm's revision changes, which every client change must bump (ClientService does).
  // Without it every /token request and each sign-in step reads the clients table (bench/README.md).
  // Stored as JSON and parsed on each hit: the provider gets its own copy (cheaper than structuredClone).
  const knownClients = new Map<string, string>();
  return class RealmAdapter implements Adapter {
    constructor(readonly name: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are managed with the latchkey CLI, not through the provider');
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : null;
      // which of the realm's domains a session lives on (its cookie is that domain's): a session ended
      // outside any request (an operator's sign-out) announces it with that issuer's logout tokens
      // and when it was last used: the provider saves a session on each request that reads it (sign-ins,
      // single sign-on, sign-out), i.e. on each use (shown on the account page's device list)
      if (this.name === 'Session') {
        if (issuer) (payload as Record<string, unknown>).latchkeyIssuer = issuer;
        (payload as Record<string, unknown>).latchkeyUsedAt = Date.now();
      }
      const write = () => payloadsRepo.upsert(db, { realmId, model: this.name, id }, payload as Record<string, unknown>, expiresAt);
      const held = this.name === 'Interaction' ? heldInteraction(realmId, id) : undefined;
      if (!held) return write();
      // a sign-in completing and resuming within one request: written when the request lets go, if still there
      held.payload = payload;
      held.write = write;
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (!storable(id)) return undefined;
      if (this.name === 'Client') {
        const known = knownClients.get(id);
        if (known) return JSON.parse(known) as AdapterPayload;
        const found = await clients.find(realmId, id);
        // unknown ids are not remembered, and the map is bounded: made-up client ids cannot grow it
        if (found && knownClients.size < 10_000) knownClients.set(id, JSON.stringify(found));
        return found;
      }
      if (this.name === 'Interaction') {
        const held = heldInteraction(realmId, id)?.payload;
        if (held) return held;
      }
      return this.#read('id', id);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return storable(userCode) ? this.#read('user_code', userCode) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return storable(uid) ? this.#read('uid', uid) : undefined;
    }

    /**
     * node-oidc-provider reads a code or refresh token, checks it is not consumed, and consumes it: two
     * requests presenting it at once both pass the check. The mark is conditional, so only the first goes
     * on; the other is a reuse, answered as node-oidc-provider answers one it sees: the grant is revoked
     * with everything issued under it, and the request fails with invalid_grant.
     */
    async consume(id: string): Promise<void> {
      if (!storable(id)) return;
      if (await payloadsRepo.consume(db, realmId, this.name, id, Date.now())) return;
      const grantId = await payloadsRepo.grantIdOf(db, realmId, this.name, id);
      if (grantId) await payloadsRepo.revokeGrant(db, realmId, grantId);
      throw new errors.InvalidGrant(`${LABELS[this.name] ?? this.name} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      if (!storable(id)) return;
      const held = this.name === 'Interaction' ? heldInteraction(realmId, id) : undefined;
      if (held) {
        // nothing held is written; the row saved before the hold goes below
        held.payload = undefined;
        held.write = undefined;
      }
      await payloadsRepo.destroy(db, realmId, this.name, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      if (!storable(grantId)) return;
      await payloadsRepo.revokeByGrantId(db, realmId, grantId);
    }

    async #read(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
      const row = await payloadsRepo.findBy(db, realmId, this.name, column, value, Date.now());
      if (!row) return undefined;
      return row.consumedAt ? { ...row.payload, consumed: Math.floor(row.consumedAt / 1000) } : (row.payload as AdapterPayload);
    }
  };
}
