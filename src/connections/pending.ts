import type { Db } from '../db/knex.js';
import { progressRepo } from '../db/progress-repo.js';
import type { UsableConnection } from './service.js';
import type { UpstreamClient } from './upstream.js';

const TTL_MS = 15 * 60 * 1000;

/**
 * An upstream sign-in under way: bound to one interaction (or, to link an identity from the account page,
 * to one account session), found again by its `state`, used once.
 */
export interface PendingFlow {
  /** The interaction; empty for a link from the account page. */
  uid: string;
  connectionId: string;
  /** The tenant the sign-in was for, when the connection was offered because of it. */
  tenantId?: string;
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
  /** A link started on the account page: the account session (its random id) and user it is bound to. */
  link?: { sid: string; userId: string };
}

/** An upstream identity waiting for the owner of the matching account to prove it (password or passkey). */
export interface PendingLink {
  connectionId: string;
  connectionName: string;
  subject: string;
  userId: string;
  email: string;
  profile: Record<string, unknown>;
}

const flowKey = (state: string) => `connection-state:${state}`;
const linkKey = (uid: string) => `connection-link:${uid}`;
const STATE = /^[A-Za-z0-9_-]{32,128}$/;

/** Server-side state of upstream sign-ins, kept next to the sign-in progress (never in the browser). */
export class PendingStore {
  constructor(private readonly db: Db) {}

  async putFlow(realmId: string, flow: PendingFlow): Promise<void> {
    await progressRepo.put(this.db, realmId, flowKey(flow.state), { ...flow }, Date.now() + TTL_MS);
  }

  /** The authorization request of `flow` at the connection's provider; the flow is kept once the request could be made. */
  async begin(upstream: UpstreamClient, connection: UsableConnection, flow: PendingFlow): Promise<URL> {
    const target = await upstream.authorizationUrl(connection.upstream, connection.clientSecret, flow.redirectUri, flow);
    await this.putFlow(connection.realmId, flow);
    return target;
  }

  /** Reads a flow by its state without using it up (the callback only learns which interaction it belongs to). */
  async peekFlow(realmId: string, state: string | undefined): Promise<PendingFlow | undefined> {
    if (!state || !STATE.test(state)) return undefined;
    return (await progressRepo.get(this.db, realmId, flowKey(state), Date.now())) as PendingFlow | undefined;
  }

  /** Takes a flow: it can never be used again, whatever happens next. */
  async takeFlow(realmId: string, state: string | undefined): Promise<PendingFlow | undefined> {
    if (!state || !STATE.test(state)) return undefined;
    return (await progressRepo.take(this.db, realmId, flowKey(state), Date.now())) as PendingFlow | undefined;
  }

  async putLink(realmId: string, uid: string, link: PendingLink): Promise<void> {
    await progressRepo.put(this.db, realmId, linkKey(uid), { ...link }, Date.now() + TTL_MS);
  }

  async getLink(realmId: string, uid: string): Promise<PendingLink | undefined> {
    return (await progressRepo.get(this.db, realmId, linkKey(uid), Date.now())) as PendingLink | undefined;
  }

  async clearLink(realmId: string, uid: string): Promise<void> {
    await progressRepo.remove(this.db, realmId, linkKey(uid));
  }
}
