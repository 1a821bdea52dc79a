import type { Db } from '../db/knex.js';
import { realmsRepo, type IssuerRow, type RealmRow } from '../db/realms-repo.js';
import { conflict, invalidField, notFound } from '../errors.js';
import { checkedName } from '../display-name.js';
import type { KeyService } from '../keys/service.js';
import { logoUrlProblem, parseRealmSettings, realmSettingsSchema, type RealmSettings } from './settings.js';

export const DEFAULT_REALM_ID = 'default';
const REALM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Realm {
  id: string;
  displayName: string;
  settings: RealmSettings;
  revision: number;
  issuers: string[];
}

/**
 * Validates an issuer URL and returns it normalised, with the host it is served on. A refusal is an
 * InvalidFieldsError on `field` (the CLI calls it --issuer, an API its body field).
 */
export function parseIssuer(value: string, field = 'issuer'): { issuer: string; host: string } {
  const refuse = (problem: string) => invalidField(field, `"${value}" ${problem}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse('is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('must use https (or http for development)');
  if (url.username || url.password) throw refuse('must not contain credentials');
  if (url.search || url.hash || value.includes('?') || value.includes('#')) throw refuse('must not have a query or fragment');
  if (url.pathname !== '/' && url.pathname !== '') throw refuse('must be an origin such as https://auth.example.com (paths are not supported)');
  // a DNS name is at most 253 characters (the stored host at most 300): a longer one was a database error
  if (url.hostname.length > 253) throw refuse('has a host name longer than 253 characters');
  return { issuer: url.origin, host: url.host.toLowerCase() };
}

export class RealmService {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyService,
  ) {}

  async get(id: string): Promise<Realm> {
    const row = await realmsRepo.find(this.db, id);
    if (!row) throw notFound(`realm "${id}"`);
    return this.#toRealm(row, await realmsRepo.issuers(this.db, id));
  }

  async list(): Promise<Realm[]> {
    const [rows, issuers] = await Promise.all([realmsRepo.list(this.db), realmsRepo.issuers(this.db)]);
    return rows.map((r) => this.#toRealm(r, issuers.filter((i) => i.realmId === r.id)));
  }

  async create(input: { id: string; displayName?: string; issuers: string[]; settings?: unknown }): Promise<Realm> {
    // field errors, so that each front end names its own flag or body field (--issuer, issuers[0])
    if (!REALM_ID.test(input.id)) throw invalidField('id', `realm id "${input.id}" must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit`);
    if (!input.issuers.length) throw invalidField('issuers', 'a realm needs at least one issuer URL');
    // shown on every sign-in page and in emails: the shared name rule (src/display-name.ts)
    const displayName = input.displayName === undefined ? input.id : checkedName(input.displayName, 'displayName', { subject: `realm "${input.id}": ` });
    const parsed = input.issuers.map((issuer, i) => parseIssuer(issuer, `issuers.${i}`));
    const settingsResult = realmSettingsSchema.safeParse(input.settings ?? {});
    if (!settingsResult.success) {
      const describe = (i: (typeof settingsResult.error.issues)[number]) =>
        i.code === 'unrecognized_keys'
          ? `unknown key ${i.keys.map((k) => `"${[...i.path, k].join('.')}"`).join(', ')}` // zod's own message names no path
          : `${i.path.join('.')}: ${i.message}`;
      throw invalidField('settings', settingsResult.error.issues.map(describe).join('; '));
    }
    const settings = settingsResult.data;
    const logo = logoUrlProblem(settings.branding.logoUrl);
    if (logo) throw invalidField('settings', `branding.logoUrl: ${logo}`);
    settings.defaultAudience ??= `${parsed[0]!.issuer}/api`;
    if (!settings.resources.some((r) => r.uri === settings.defaultAudience)) settings.resources.push({ uri: settings.defaultAudience, scopes: [] });
    await this.db.transaction(async (trx) => {
      if (await realmsRepo.find(trx, input.id)) throw conflict(`realm "${input.id}" already exists`);
      await this.#assertHostsFree(trx, parsed);
      const now = Date.now();
      await realmsRepo.insert(trx, { id: input.id, displayName, settings }, now);
      for (const [i, p] of parsed.entries()) {
        await realmsRepo.insertIssuer(trx, { issuer: p.issuer, host: p.host, realmId: input.id, isPrimary: i === 0 }, now);
      }
      await this.keys.ensureKeys(input.id, trx);
    });
    return this.get(input.id);
  }

  async addIssuer(realmId: string, issuer: string): Promise<Realm> {
    const parsed = parseIssuer(issuer);
    await this.db.transaction(async (trx) => {
      if (!(await realmsRepo.find(trx, realmId))) throw notFound(`realm "${realmId}"`);
      await this.#assertHostsFree(trx, [parsed]);
      const now = Date.now();
      await realmsRepo.insertIssuer(trx, { issuer: parsed.issuer, host: parsed.host, realmId, isPrimary: false }, now);
      await realmsRepo.bumpRevision(trx, realmId, now);
    });
    return this.get(realmId);
  }

  /**
   * Makes sure the default realm exists and serves the configured issuer (first start, `latchkey migrate`).
   * With `addIssuer: false` (the other CLI commands) an existing default realm is left as it is: a command
   * run without the server's PORT or LATCHKEY_ISSUER must not add http://localhost:3000 to it.
   */
  async ensureDefault(issuer: string, { addIssuer = true }: { addIssuer?: boolean } = {}): Promise<Realm> {
    const parsed = parseIssuer(issuer);
    const existing = await realmsRepo.find(this.db, DEFAULT_REALM_ID);
    if (!existing) {
      const owner = await realmsRepo.findIssuerByHost(this.db, parsed.host);
      if (owner) throw conflict(`the default issuer ${parsed.issuer} is already served by realm "${owner.realmId}"`);
      try {
        return await this.create({ id: DEFAULT_REALM_ID, displayName: 'Latchkey', issuers: [parsed.issuer] });
      } catch (err) {
        // another instance created it at the same moment
        if (await realmsRepo.find(this.db, DEFAULT_REALM_ID)) return this.get(DEFAULT_REALM_ID);
        throw err;
      }
    }
    const owner = await realmsRepo.findIssuerByHost(this.db, parsed.host);
    if (!owner && addIssuer) {
      try {
        return await this.addIssuer(DEFAULT_REALM_ID, parsed.issuer);
      } catch (err) {
        if (await realmsRepo.findIssuerByHost(this.db, parsed.host)) return this.get(DEFAULT_REALM_ID);
        throw err;
      }
    }
    await this.keys.ensureKeys(DEFAULT_REALM_ID);
    return this.get(DEFAULT_REALM_ID);
  }

  async #assertHostsFree(db: Db, parsed: Array<{ issuer: string; host: string }>): Promise<void> {
    const hosts = new Set<string>();
    for (const p of parsed) {
      if (hosts.has(p.host)) throw invalidField('issuers', `issuer host "${p.host}" is listed twice`);
      hosts.add(p.host);
      const owner = await realmsRepo.findIssuerByHost(db, p.host);
      if (owner) throw conflict(`host "${p.host}" is already served by realm "${owner.realmId}" (issuer ${owner.issuer})`);
    }
  }

  #toRealm(row: RealmRow, issuers: IssuerRow[]): Realm {
    const sorted = [...issuers].sort((a, b) => Number(b.isPrimary) - Number(a.isPrimary) || a.createdAt - b.createdAt);
    return { id: row.id, displayName: row.displayName, settings: parseRealmSettings(row.settings), revision: row.revision, issuers: sorted.map((i) => i.issuer) };
  }
}
