import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { IssuerRow } from '../db/realms-repo.js';
import type { KeyService } from '../keys/service.js';
import type { RealmRegistry } from '../realms/registry.js';
import type { RealmService, Realm } from '../realms/service.js';
import { createProvider, type ProviderDeps } from './provider-factory.js';

export interface ServedIssuer {
  issuer: string;
  realm: Realm;
  provider: Provider;
  /** Precomputed JWKS response, shared by every issuer of the realm. */
  jwks: { body: string; etag: string };
}

interface Entry {
  revision: number;
  validUntil: number | null;
  served: Promise<ServedIssuer>;
  /** The built instance, once `served` has settled. */
  value?: ServedIssuer;
}

/**
 * One node-oidc-provider instance per issuer URL, built on first use and rebuilt when the realm's
 * revision changes (clients, keys, issuers, settings) or a key changes state (activation, removal).
 */
export class ProviderCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly registry: RealmRegistry,
    private readonly realms: RealmService,
    private readonly keys: KeyService,
    private readonly deps: ProviderDeps,
  ) {
    registry.onChange((realmId) => {
      for (const [issuer, entry] of this.#entries) {
        entry.served.then((s) => s.realm.id === realmId && this.#entries.get(issuer) === entry && this.#entries.delete(issuer)).catch(() => this.#entries.delete(issuer));
      }
    });
  }

  get(issuer: IssuerRow): Promise<ServedIssuer> {
    const revision = this.registry.revision(issuer.realmId) ?? 0;
    const entry = this.#entries.get(issuer.issuer);
    if (entry && entry.revision === revision && (entry.validUntil === null || Date.now() < entry.validUntil)) return entry.served;
    const fresh: Entry = { revision, validUntil: null, served: this.#build(issuer) };
    fresh.served.then(
      (s) => {
        fresh.validUntil = (s as ServedIssuer & { validUntil: number | null }).validUntil;
        fresh.value = s;
      },
      () => this.#entries.get(issuer.issuer) === fresh && this.#entries.delete(issuer.issuer),
    );
    this.#entries.set(issuer.issuer, fresh);
    return fresh.served;
  }

  /** The instance for an issuer when it is built and current, without waiting (the fast path). */
  peek(issuer: IssuerRow): ServedIssuer | undefined {
    const entry = this.#entries.get(issuer.issuer);
    if (!entry?.value || entry.revision !== (this.registry.revision(issuer.realmId) ?? 0)) return undefined;
    if (entry.validUntil !== null && Date.now() >= entry.validUntil) return undefined;
    return entry.value;
  }

  clear(): void {
    this.#entries.clear();
  }

  async #build(issuer: IssuerRow): Promise<ServedIssuer & { validUntil: number | null }> {
    const realm = await this.realms.get(issuer.realmId);
    const material = await this.keys.signingMaterial(realm.id);
    // the provider is rebuilt on every client change (the realm's revision), so its clients can live in memory
    const staticClients = await this.deps.clients.allProviderMetadata(realm.id);
    const provider = createProvider(issuer.issuer, realm, material, this.deps, staticClients);
    const body = JSON.stringify(material.jwks);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    return { issuer: issuer.issuer, realm, provider, jwks: { body, etag }, validUntil: material.validUntil };
  }
}
