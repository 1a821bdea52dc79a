import { z } from 'zod';

/** Image hosts trusted for upstream avatars by default: Google, secure Gravatar and Slack. */
export const DEFAULT_SAFE_IMAGE_HOSTS = ['lh3.googleusercontent.com', '*.googleusercontent.com', 'secure.gravatar.com', 'avatars.slack-edge.com'] as const;

/** Every setting Latchkey understands; the YAML file and the environment fill it. */
export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(3000),
        /** Honour X-Forwarded-Host / X-Forwarded-Proto / X-Forwarded-For (only behind a trusted proxy). */
        trustProxy: z.boolean().default(false),
      })
      .strict()
      .default({ host: '0.0.0.0', port: 3000, trustProxy: false }),
    database: z
      .object({
        /** `sqlite:PATH` or `postgres://...`. */
        url: z.string().min(1).optional(),
        /** Seconds between background purges of expired OIDC artefacts. */
        purgeIntervalSeconds: z.number().int().positive().default(300),
      })
      .strict()
      .default({ purgeIntervalSeconds: 300 }),
    /** Directory for the embedded database and the generated development secret. */
    dataDir: z.string().default('./data'),
    /** Issuer of the default realm. */
    issuer: z.string().url().default('http://localhost:3000'),
    /** Master secret; prefer the LATCHKEY_SECRET environment variable. */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    /**
     * Requests the server itself makes: to upstream identity providers and trusted issuers (discovery,
     * tokens, userinfo, keys, wherever a discovery document points), back-channel logout deliveries and
     * client JWKS URIs.
     */
    outbound: z
      .object({
        /**
         * Whether they may reach loopback or private network addresses (127.0.0.0/8, 10/8, 172.16/12,
         * 192.168/16, 100.64/10, ::1, fc00::/7). Link-local and cloud metadata addresses (169.254.0.0/16,
         * fe80::/10, 100.100.100.200, fd00:ec2::254) are refused whatever this says. Default: true when
         * the issuer is on localhost (a laptop with local applications and upstreams), false otherwise.
         */
        allowPrivateNetworks: z.boolean().optional(),
      })
      .strict()
      .default({}),
    /** How often (seconds) an instance looks for realm, client and key changes made elsewhere. */
    refreshIntervalSeconds: z.number().positive().default(1),
    passwords: z
      .object({
        minLength: z.number().int().min(8).max(64).default(15),
        maxLength: z.number().int().min(64).max(1024).default(256),
        argon2: z
          .object({
            /** KiB; OWASP minimum is 19456 (19 MiB) with t=2, p=1. */
            memoryCost: z.number().int().min(19456).default(19456),
            timeCost: z.number().int().min(1).default(2),
            parallelism: z.number().int().min(1).max(16).default(1),
          })
          .strict()
          // OWASP's cheapest settings: m=19 MiB with t=2, or m=46 MiB with t=1.
          .refine((a) => a.timeCost >= 2 || a.memoryCost >= 47104, {
            message: 'timeCost 1 needs memoryCost of at least 47104 KiB (OWASP); otherwise use timeCost 2 or more',
          })
          .default({ memoryCost: 19456, timeCost: 2, parallelism: 1 }),
        /** Concurrent hash computations; defaults to the number of CPU cores. */
        maxConcurrentHashes: z.number().int().positive().optional(),
        /**
         * CPU priority of the argon2 helper process. `idle` (SCHED_IDLE and nice 19): hashing runs only on
         * CPU time nothing else wants, so a burst of sign-ins never delays token requests, but on a host
         * whose cores other processes keep busy a verification waits for seconds (a password sign-in then
         * stalls). `normal`: the helper competes like any process, for hosts shared with CPU-bound work.
         */
        hashPriority: z.enum(['idle', 'normal']).default('idle'),
      })
      .strict()
      .default({ minLength: 15, maxLength: 256, argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 }, hashPriority: 'idle' }),
    bruteForce: z
      .object({
        enabled: z.boolean().default(true),
        /** Failures per account before the account is temporarily locked (Keycloak: 30). */
        maxFailuresPerAccount: z.number().int().positive().default(30),
        /** Failures per client address before that address is temporarily locked. */
        maxFailuresPerAddress: z.number().int().positive().default(100),
        /** Each further block of failures adds this wait (Keycloak: 60 s). */
        waitIncrementSeconds: z.number().int().nonnegative().default(60),
        /** Upper bound of the wait (Keycloak: 15 min). */
        maxWaitSeconds: z.number().int().nonnegative().default(900),
        /** Failures are forgotten after this long without one (Keycloak: 12 h). */
        failureResetSeconds: z.number().int().positive().default(43200),
        /** Two failures closer than this lock the account for `quickLoginWaitSeconds` (Keycloak: 1000 ms / 60 s). */
        quickLoginCheckMilliseconds: z.number().int().nonnegative().default(1000),
        quickLoginWaitSeconds: z.number().int().nonnegative().default(60),
      })
      .strict()
      .default({
        enabled: true,
        maxFailuresPerAccount: 30,
        maxFailuresPerAddress: 100,
        waitIncrementSeconds: 60,
        maxWaitSeconds: 900,
        failureResetSeconds: 43200,
        quickLoginCheckMilliseconds: 1000,
        quickLoginWaitSeconds: 60,
      }),
    tokens: z
      .object({
        accessTokenTtlSeconds: z.number().int().positive().default(3600),
        idTokenTtlSeconds: z.number().int().positive().default(3600),
        clientCredentialsTtlSeconds: z.number().int().positive().default(3600),
        refreshTokenTtlSeconds: z.number().int().positive().default(14 * 24 * 3600),
        sessionTtlSeconds: z.number().int().positive().default(14 * 24 * 3600),
        interactionTtlSeconds: z.number().int().positive().default(3600),
        deviceCodeTtlSeconds: z.number().int().positive().default(600),
      })
      .strict()
      .default({
        accessTokenTtlSeconds: 3600,
        idTokenTtlSeconds: 3600,
        clientCredentialsTtlSeconds: 3600,
        refreshTokenTtlSeconds: 14 * 24 * 3600,
        sessionTtlSeconds: 14 * 24 * 3600,
        interactionTtlSeconds: 3600,
        deviceCodeTtlSeconds: 600,
      }),
    keys: z
      .object({
        /** Default delay between publishing a rotated key and signing with it. */
        activateAfterSeconds: z.number().int().nonnegative().default(60),
      })
      .strict()
      .default({ activateAfterSeconds: 60 }),
    logout: z
      .object({
        /**
         * How long the front-channel logout page waits for the applications' logout pages (iframes) before it
         * goes on anyway; without JavaScript its meta refresh goes on a second later.
         */
        frontchannelWaitSeconds: z.number().min(0.5).max(60).default(3),
      })
      .strict()
      .default({ frontchannelWaitSeconds: 3 }),
    authorization: z
      .object({
        /** `allow-all`, `static-rules` (deny lists, added claims and permission grants from `options`), or a path to an ES module. */
        module: z.string().default('allow-all'),
        options: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .default({ module: 'allow-all', options: {} }),
    federation: z
      .object({
        /**
         * Hosts whose https images may be shown as an upstream identity's `picture` (exact names, or
         * `*.example.com` for any subdomain); any other picture is dropped.
         */
        safeImageHosts: z
          .array(z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'must be a lower-case host name, optionally starting with "*."'))
          .default([...DEFAULT_SAFE_IMAGE_HOSTS]),
      })
      .strict()
      .default({ safeImageHosts: [...DEFAULT_SAFE_IMAGE_HOSTS] }),
    email: z
      .object({
        /**
         * Outgoing mail server: `smtp://user:password@host:587` (STARTTLS when offered) or `smtps://...:465`.
         * Without it, nothing that needs email is offered (no "Forgot your password?" link).
         */
        smtpUrl: z
          .string()
          .regex(/^smtps?:\/\/[^\s/]+(:\d+)?\/?(\?.*)?$/, 'must be an smtp:// or smtps:// URL such as smtp://user:password@mail.example.com:587')
          .optional(),
        /** Sender of every email, e.g. `"Example sign-in" <no-reply@example.com>`. */
        from: z.string().min(3).max(320).default('Latchkey <no-reply@localhost>'),
        /** How long a password reset link works. */
        passwordResetTtlSeconds: z.number().int().min(60).max(86400).default(1800),
        /** How long an email address confirmation link works. */
        verifyEmailTtlSeconds: z.number().int().min(300).max(7 * 86400).default(86400),
        /** How long a sign-up code (sent to confirm a new account's address) works. */
        signupCodeTtlSeconds: z.number().int().min(60).max(3600).default(600),
        /** How long the link confirming a new email address (changed on the account page) works. */
        changeEmailTtlSeconds: z.number().int().min(300).max(7 * 86400).default(86400),
      })
      .strict()
      .default({ from: 'Latchkey <no-reply@localhost>', passwordResetTtlSeconds: 1800, verifyEmailTtlSeconds: 86400, signupCodeTtlSeconds: 600, changeEmailTtlSeconds: 86400 }),
  })
  .strict();

export type LatchkeyConfig = z.infer<typeof configSchema> & {
  /** Resolved database URL (never undefined after loading). */
  database: { url: string; purgeIntervalSeconds: number };
  /** Resolved master secret. */
  secret: string;
  /** `allowPrivateNetworks` resolved (never undefined after loading). */
  outbound: { allowPrivateNetworks: boolean };
  /** Where the configuration came from, for the start-up log. */
  source: { file: string | null; secretFrom: 'env' | 'file' | 'generated' | 'config' };
};
