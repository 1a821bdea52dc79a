import { availableParallelism } from 'node:os';
import { SessionEndNotifier } from '../oidc/backchannel-logout.js';
import pino, { type Logger } from 'pino';
import type { HashPriority } from '../accounts/hash-process.js';
import { PasswordHasher } from '../accounts/password-hasher.js';
import { LoginThrottle } from '../accounts/login-throttle.js';
import { EmailVerificationService } from '../accounts/email-verification.js';
import { PasswordResetService } from '../accounts/password-reset.js';
import { EmailLinks } from '../email/links.js';
import { SignupCodeService } from '../accounts/signup-codes.js';
import { EmailChangeService } from '../accounts/email-change.js';
import { createMailer, type Mailer } from '../email/mailer.js';
import { UserService } from '../accounts/user-service.js';
import { guardAuthorizationModule } from '../authz/guard.js';
import { loadAuthorizationModule } from '../authz/load.js';
import type { AuthorizationModule } from '../authz/module.js';
import { ClientService, type ClientMetadataValidator } from '../clients/service.js';
import type { LatchkeyConfig } from '../config/schema.js';
import { deriveKey, SecretBox } from '../crypto/secret-box.js';
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
import { createOutboundFetch } from '../connections/outbound-fetch.js';
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
  /** Outgoing email (disabled without `email.smtpUrl`). */
  mailer: Mailer;
  /** "Forgot your password?" links by email. */
  passwordResets: PasswordResetService;
  /** Email address confirmation links. */
  emailVerification: EmailVerificationService;
  /** Sign-up codes by email (an enumeration-free sign-up when email is configured). */
  signupCodes: SignupCodeService;
  /** Email address changes from the account page (a link to the new address). */
  emailChange: EmailChangeService;
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

export interface ServicesOptions {
  log?: Logger;
  /**
   * CPU priority of the argon2 helper, instead of `passwords.hashPriority`. The CLI passes `normal`: the
   * setting protects a server's token requests from bursts of sign-ins, whereas a one-shot command that
   * hashes one password at idle priority only waits (seconds on a busy host) and protects nothing.
   */
  hashPriority?: HashPriority;
}

export async function createServices(config: LatchkeyConfig, options: ServicesOptions = {}): Promise<Services> {
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
    priority: options.hashPriority ?? config.passwords.hashPriority,
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
  const users = new UserService(db, hasher, config.passwords);
  // sessions ended outside a request are announced to applications with back-channel logout tokens,
  // signed by a provider built for the session's domain (as validateClient builds one)
  const sessionEnds = new SessionEndNotifier(async (realmId, issuer) => {
    const realm = await realms.get(realmId);
    if (!realm.issuers.includes(issuer)) return undefined;
    const { createProvider } = await import('../oidc/provider-factory.js');
    const { clients, tenants, trust, cookieKeys } = services;
    return createProvider(issuer, realm, await keys.signingMaterial(realmId), { db, config, clients, users, authz, tenants, cookieKeys, log, trust });
  }, log.child({ component: 'backchannel-logout' }));
  users.onSessionsEnded((realmId, accountId, ended) => sessionEnds.notify(realmId, accountId, ended));
  // every request to an upstream or trusted issuer (discovery, tokens, userinfo, keys) goes through the address policy
  const outbound = createOutboundFetch({ allowPrivateNetworks: config.outbound.allowPrivateNetworks });
  const mailer = createMailer({ smtpUrl: config.email.smtpUrl, from: config.email.from });
  const emailLinks = new EmailLinks(db, users);
  const services: Services = {
    config,
    log,
    db,
    box,
    keys,
    realms,
    clients: new ClientService(db, validateClient),
    users,
    hasher,
    mailer,
    passwordResets: new PasswordResetService(db, users, emailLinks, mailer, log, config.email.passwordResetTtlSeconds),
    emailVerification: new EmailVerificationService(db, users, emailLinks, mailer, log, config.email.verifyEmailTtlSeconds),
    emailChange: new EmailChangeService(db, users, emailLinks, mailer, log, config.email.changeEmailTtlSeconds),
    signupCodes: new SignupCodeService(mailer, log, deriveKey(config.secret, 'signup-codes'), config.email.signupCodeTtlSeconds),
    throttle: new LoginThrottle(db, config.bruteForce),
    // a failing listener is logged; the sign-in that emitted goes on (src/events/bus.ts)
    events: new EventBus((err, event) => log.error({ err, event: event.type, realm: event.realm, method: event.method }, 'a sign-in event listener failed')),
    authz,
    passkeys: new PasskeyService(
      db,
      async (e) => {
        await recordSecurityEvent(db, e);
        log.warn({ realm: e.realmId, user: e.userId, type: e.type }, 'security event');
      },
      log.child({ component: 'passkeys' }),
    ),
    totp: new TotpService(db, box, {}),
    recovery: new RecoveryCodeService(db, deriveKey(config.secret, 'recovery-codes')),
    progress: new ProgressStore(db),
    connections: new ConnectionService(db, box, realms),
    upstream: new UpstreamClient(outbound),
    linking: new AccountLinking(db, new PendingStore(db), config.federation.safeImageHosts),
    trust: new TrustService(db, { fetch: outbound }),
    tenants: new TenantService(db),
    cookieKeys: [deriveKey(config.secret, 'cookies').toString('base64url')],
    csrfKey: deriveKey(config.secret, 'csrf'),
    close: async () => {
      mailer.close();
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
 *
 * When some of its keys open and others do not, the secret is right and those others were sealed with
 * another one (a command run with the wrong secret before commands checked it): that is refused too,
 * naming the keys and the repair (`latchkey keys repair`), unless `allowUnreadable` (the keys commands,
 * which show and repair them).
 */
export async function assertSecretOpensKeys(services: Services, options: { allowUnreadable?: boolean } = {}): Promise<void> {
  const keys = await services.keys.inspect(DEFAULT_REALM_ID);
  const blocking = keys.filter((k) => !k.readable && k.state !== 'expired');
  if (!blocking.length) return;
  if (!keys.some((k) => k.readable)) {
    throw new LatchkeyError(
      'secret_mismatch',
      "LATCHKEY_SECRET is not the secret this database's signing keys were sealed with: start every instance (and run every latchkey command) with the secret the database was set up with (in development, the one under the data folder), or use a new DATABASE_URL",
      500,
    );
  }
  if (options.allowUnreadable) return;
  throw new LatchkeyError(
    'unreadable_keys',
    `the default realm's signing key${blocking.length > 1 ? 's' : ''} ${blocking.map((k) => k.key.kid).join(', ')} cannot be opened with LATCHKEY_SECRET, while its other keys can: they were sealed with another secret. Discard them with \`latchkey keys repair --realm ${DEFAULT_REALM_ID} --yes\` (tokens they signed stop verifying; \`latchkey keys list --realm ${DEFAULT_REALM_ID}\` shows them)`,
    500,
  );
}
