import { ACCOUNT_CLIENT_ID, type ClientService } from '../clients/service.js';
import type { Db } from '../db/knex.js';
import { payloadsRepo, type StoredRow } from '../db/payloads-repo.js';
import { SESSION_DEVICE_FIELD, type SessionDevice } from '../oidc/session-device.js';
import { describeUserAgent } from './user-agent.js';

/**
 * What a user is signed in with, read from node-oidc-provider's stored sessions and grants (through the
 * account index of oidc_payloads): the account page's "Signed-in devices" and "Apps with access", `latchkey
 * user sessions` and the admin API's GET /users/{id}/sessions. Keycloak's account console calls these
 * "Device activity" and "Applications".
 */
export interface SessionView {
  /** The session's uid (not its id: that is the session cookie's value, never shown). */
  id: string;
  /** The issuer (domain) the session lives on; null for a session stored before it was recorded. */
  issuer: string | null;
  domain: string | null;
  browser: string;
  os: string;
  /** Epoch milliseconds. */
  signedInAt: number | null;
  lastUsedAt: number | null;
  /** The applications signed in with the session, by name. */
  clients: Array<{ clientId: string; name: string }>;
}

export interface AppView {
  clientId: string;
  name: string;
  /** Every scope granted, over the user's grants to it (one per session it signed in with). */
  scopes: string[];
  /** It was granted offline_access. */
  offlineAccess: boolean;
  /** It holds a live refresh token. */
  refreshToken: boolean;
  /** Epoch milliseconds of its oldest live grant. */
  firstGrantedAt: number | null;
}

interface Deps {
  db: Db;
  clients: Pick<ClientService, 'providerMetadata'>;
}

/** Client names, each looked up once; a client that no longer exists goes by its id. */
function clientNames(deps: Deps, realmId: string): (clientId: string) => Promise<string> {
  const names = new Map<string, Promise<string>>();
  return (clientId) => {
    let name = names.get(clientId);
    if (!name) {
      name = deps.clients.providerMetadata(realmId, clientId).then((m) => (typeof m?.client_name === 'string' && m.client_name ? m.client_name : clientId));
      names.set(clientId, name);
    }
    return name;
  };
}

const seconds = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value * 1000 : null);
const ms = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

function hostOf(issuer: string | null): string | null {
  if (!issuer) return null;
  return URL.parse(issuer)?.host ?? null;
}

async function sessionView(row: StoredRow, nameOf: (clientId: string) => Promise<string>): Promise<SessionView> {
  const p = row.payload;
  const device = p[SESSION_DEVICE_FIELD] as Partial<SessionDevice> | undefined;
  const issuer = typeof p.latchkeyIssuer === 'string' ? p.latchkeyIssuer : null;
  const clientIds = Object.keys(p.authorizations ?? {});
  return {
    id: row.uid ?? '',
    issuer,
    domain: hostOf(issuer),
    ...describeUserAgent(typeof device?.userAgent === 'string' ? device.userAgent : undefined),
    signedInAt: seconds(p.loginTs),
    // sessions saved before the stamp was written: when the provider first stored them
    lastUsedAt: ms(p.latchkeyUsedAt) ?? seconds(p.iat),
    clients: await Promise.all(clientIds.map(async (clientId) => ({ clientId, name: await nameOf(clientId) }))),
  };
}

/** The user's live sessions in the realm (every domain), the most recently used first. */
export async function sessionsOfUser(deps: Deps, realmId: string, userId: string, now = Date.now()): Promise<SessionView[]> {
  const nameOf = clientNames(deps, realmId);
  const rows = (await payloadsRepo.sessionsOf(deps.db, realmId, userId, now)).filter((r) => r.uid);
  const views = await Promise.all(rows.map((r) => sessionView(r, nameOf)));
  return views.sort((a, b) => (b.lastUsedAt ?? 0) - (a.lastUsedAt ?? 0) || a.id.localeCompare(b.id));
}

/** The scopes a stored grant holds: its OpenID scopes and the scopes of each API (resource) in it. */
function scopesOf(grant: StoredRow): string[] {
  const p = grant.payload as { openid?: { scope?: unknown }; resources?: Record<string, unknown> };
  const all = [p.openid?.scope, ...Object.values(p.resources ?? {})].filter((s): s is string => typeof s === 'string');
  return all.flatMap((s) => s.split(' ')).filter(Boolean);
}

/**
 * The applications the user has granted access (one per client, over its grants in every session), by
 * name; the account page's own client is not one of them.
 */
export async function appsOfUser(deps: Deps, realmId: string, userId: string, now = Date.now()): Promise<AppView[]> {
  const grants = (await payloadsRepo.grantsOf(deps.db, realmId, userId, now)).filter((g) => typeof g.payload.clientId === 'string' && g.payload.clientId !== ACCOUNT_CLIENT_ID);
  const withRefresh = await payloadsRepo.grantsWithRefreshTokens(deps.db, realmId, grants.map((g) => g.id), now);
  const byClient = new Map<string, StoredRow[]>();
  for (const g of grants) {
    const clientId = g.payload.clientId as string;
    byClient.set(clientId, [...(byClient.get(clientId) ?? []), g]);
  }
  const nameOf = clientNames(deps, realmId);
  const apps = await Promise.all(
    [...byClient].map(async ([clientId, own]): Promise<AppView> => {
      const scopes = [...new Set(own.flatMap(scopesOf))];
      const granted = own.map((g) => seconds(g.payload.iat)).filter((t): t is number => t !== null);
      return {
        clientId,
        name: await nameOf(clientId),
        scopes,
        offlineAccess: scopes.includes('offline_access'),
        refreshToken: own.some((g) => withRefresh.has(g.id)),
        firstGrantedAt: granted.length ? Math.min(...granted) : null,
      };
    }),
  );
  return apps.sort((a, b) => a.name.localeCompare(b.name) || a.clientId.localeCompare(b.clientId));
}

/** A session as `latchkey user sessions` and the admin API show it (snake_case, ISO 8601 times). */
export interface PublicSession {
  id: string;
  domain: string | null;
  browser: string;
  os: string;
  signed_in_at: string | null;
  last_used_at: string | null;
  clients: Array<{ client_id: string; name: string }>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toPublicSession(s: SessionView): PublicSession {
  return {
    id: s.id,
    domain: s.domain,
    browser: s.browser,
    os: s.os,
    signed_in_at: iso(s.signedInAt),
    last_used_at: iso(s.lastUsedAt),
    clients: s.clients.map((c) => ({ client_id: c.clientId, name: c.name })),
  };
}
