import { availableParallelism } from 'node:os';
import pino, { type Logger } from 'pino';
import { PasswordHasher } from '../accounts/password-hasher.js';
import { LoginThrottle } from '../accounts/login-throttle.js';
import { UserService } from '../accounts/user-service.js';
import { guardAuthorizationModule } from '../authz/guard.js';
import { loadAuthorizationModule } from '../authz/load.js';
import type { AuthorizationModule } from '../authz/module.js';
import { ClientService, type ClientMetadataValidator } from '../clients/service.js';
import type { LatchkeyConfig } from '../config/schema.js';
import { deriveKey, SecretBox, SecretMismatchError } from '../crypto/secret-box.js';
import { openDatabase, type Db } from '../db/knex.js';
import { EventBus } from '../events/bus.js';
import { KeyService } from '../keys/service.js';
import { DEFAULT_REALM_ID, RealmService } from '../realms/service.js';
import { LatchkeyError } from '../errors.js';
import { ProgressStore } from '../interactions/progress.js';
import { PasskeyService } from '../passkeys/service.js';
import { TotpService } from '../mfa/totp.js';
import { RecoveryCodeService } from '../mfa/recovery-codes.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { AccountLinking } from '../connections/account-linking.js';
import { PendingStore } from '../connections/pending.js';
import { ConnectionService } from '../connections/service.js';
import { UpstreamClient } from '../connections/upstream.js';
import { TrustService } from '../trust/service.js';
import { TenantService } from '../tenants/service.js';

/** Everything the server, the CLI and the tests share, built from one configuration. */
export interface Services {
  config: LatchkeyConfig;
  log: Logger;
  db: Db;
  box: SecretBox;
  keys: KeyService;
  realms: RealmService;
  clients: ClientService;
  users: UserService;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  events: EventBus;
  authz: AuthorizationModule;
  passkeys: PasskeyService;
  totp: TotpService;
  recovery: RecoveryCodeService;
  progress: ProgressStore;
  /** Upstream identity providers (connections), the client that talks to them, and account linking. */
  connections: ConnectionService;
  upstream: UpstreamClient;
  linking: AccountLinking;
  trust: TrustService;
  tenants: TenantService;
  /** Keys signing cookies and CSRF tokens, derived from LATCHKEY_SECRET (stable across instances). */
  cookieKeys: string[];
  csrfKey: Buffer;
  close(): Promise<void>;
}

export async function createServices(config: LatchkeyConfig, options: { log?: Logger } = {}): Promise<Services> {
  const log =
    options.log ??
    pino({
      level: config.log.level,
      base: { service: 'latchkey' },
      redact: { paths: ['password', '*.password', 'secret', '*.secret', 'client_secret', '*.client_secret', 'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie'], censor: '[redacted]' },
    });
  const db = openDatabase(config.database.url, {
    log,
    onWriteBatchError: (err) => log.error({ err }, 'a batch of SQLite writes was not committed; the responses waiting for it were not sent'),
  });
  const box = new SecretBox(config.secret);
  // A key lives on in the JWKS for as long as anything it signed can still be presented.
  const retentionMs = (Math.max(config.tokens.accessTokenTtlSeconds, config.tokens.idTokenTtlSeconds, config.tokens.clientCredentialsTtlSeconds) + 300) * 1000;
  const keys = new KeyService(db, box, { retentionMs });
  const hasher = new PasswordHasher({
    ...config.passwords.argon2,
    maxConcurrent: config.passwords.maxConcurrentHashes ?? availableParallelism(),
    priority: config.passwords.hashPriority,
  });
  // an operator's module that throws or answers garbage denies, never a 500 or a token (src/authz/guard.ts)
  const authz = guardAuthorizationModule(await loadAuthorizationModule(config.authorization), log);
  const realms = new RealmService(db, keys);
  // node-oidc-provider's rules for client metadata, loaded only when a client is created
  const validateClient: ClientMetadataValidator = async (realmId, metadata) => {
    const { validateClientMetadata } = await import('../oidc/validate-client.js');
    const { clients, users, tenants, trust, cookieKeys } = services;
    await validateClientMetadata({ db, config, clients, users, authz, tenants, cookieKeys, log, trust }, await realms.get(realmId), await keys.signingMaterial(realmId), metadata);
  };
  const services: Services = {
    config,
    log,
    db,
    box,
    keys,
    realms,
    clients: new ClientService(db, validateClient),
    users: new UserService(db, hasher, config.passwords),
    hasher,
    throttle: new LoginThrottle(db, config.bruteForce),
    // a failing listener is logged; the sign-in that emitted goes on (src/events/bus.ts)
    events: new EventBus((err, event) => log.error({ err, event: event.type, realm: event.realm, method: event.method }, 'a sign-in event listener failed')),
    authz,
    passkeys: new PasskeyService(db, async (e) => {
      await recordSecurityEvent(db, e);
      log.warn({ realm: e.realmId, user: e.userId, type: e.type }, 'security event');
    }),
    totp: new TotpService(db, box, {}),
    recovery: new RecoveryCodeService(db, deriveKey(config.secret, 'recovery-codes')),
    progress: new ProgressStore(db),
    connections: new ConnectionService(db, box, realms),
    upstream: new UpstreamClient(),
    linking: new AccountLinking(db, new PendingStore(db), config.federation.safeImageHosts),
    trust: new TrustService(db),
    tenants: new TenantService(db),
    cookieKeys: [deriveKey(config.secret, 'cookies').toString('base64url')],
    csrfKey: deriveKey(config.secret, 'csrf'),
    close: async () => {
      await hasher.close();
      await db.destroy();
    },
  };
  return services;
}

/**
 * The signing keys of the default realm open with this LATCHKEY_SECRET. A server started (or a CLI
 * command run) with another secret than the database was set up with would otherwise go on: the server
 * to fail every request that needs a provider, a command to seal new keys or connection secrets with a
 * secret the servers do not have. Both stop instead, saying why.
 */
export async function assertSecretOpensKeys(services: Services): Promise<void> {
  try {
    await services.keys.signingMaterial(DEFAULT_REALM_ID);
  } catch (err) {
    if (!(err instanceof SecretMismatchError)) throw err;
    throw new LatchkeyError(
      'secret_mismatch',
      "LATCHKEY_SECRET is not the secret this database's signing keys were sealed with: start every instance (and run every latchkey command) with the secret the database was set up with (in development, the one under the data folder), or use a new DATABASE_URL",
      500,
    );
  }
}
