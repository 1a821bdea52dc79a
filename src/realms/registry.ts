import type { Db } from '../db/knex.js';
import { realmsRepo, type IssuerRow } from '../db/realms-repo.js';

/**
 * Each instance's view of which host belongs to which realm, and of every realm's revision.
 * A realm's revision grows whenever its issuers, clients, keys or settings change (from any
 * instance or the CLI); polling it is how changes reach running servers without a restart.
 */
export class RealmRegistry {
  #hosts = new Map<string, IssuerRow>();
  #revisions = new Map<string, number>();
  #misses = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  readonly #listeners = new Set<(realmId: string) => void>();

  constructor(
    private readonly db: Db,
    private readonly intervalMs: number,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch(() => {
        /* database hiccup: keep serving the last view; /readyz reports the database */
      });
    }, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  onChange(listener: (realmId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  revision(realmId: string): number | undefined {
    return this.#revisions.get(realmId);
  }

  /** The issuer of a host from this instance's current view, without a database look-up. */
  lookup(host: string): IssuerRow | undefined {
    return this.#hosts.get(host.toLowerCase());
  }

  /** Host (as in the Host header, lower-cased, with a non-default port) to issuer, or undefined. */
  async resolve(host: string): Promise<IssuerRow | undefined> {
    const key = host.toLowerCase();
    const hit = this.#hosts.get(key);
    if (hit) return hit;
    // A host added a moment ago by another process: look once, then remember the miss briefly.
    const missedAt = this.#misses.get(key);
    if (missedAt !== undefined && Date.now() - missedAt < this.intervalMs) return undefined;
    const row = await realmsRepo.findIssuerByHost(this.db, key);
    if (!row) {
      if (this.#misses.size > 10_000) this.#misses.clear();
      this.#misses.set(key, Date.now());
      return undefined;
    }
    await this.refresh();
    return this.#hosts.get(key);
  }

  refresh(): Promise<void> {
    this.#refreshing ??= this.#load().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #load(): Promise<void> {
    const revisions = await realmsRepo.revisions(this.db);
    const changed: string[] = [];
    const seen = new Set<string>();
    for (const { id, revision } of revisions) {
      seen.add(id);
      if (this.#revisions.get(id) !== revision) changed.push(id);
    }
    for (const id of this.#revisions.keys()) if (!seen.has(id)) changed.push(id);
    if (!changed.length && this.#hosts.size) return;
    const issuers = await realmsRepo.issuers(this.db);
    this.#hosts = new Map(issuers.map((i) => [i.host, i]));
    this.#revisions = new Map(revisions.map((r) => [r.id, r.revision]));
    this.#misses.clear();
    for (const id of changed) for (const l of this.#listeners) l(id);
  }
}
