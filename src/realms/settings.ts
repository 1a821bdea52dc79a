import { z } from 'zod';
import { isPemCertificate } from '../passkeys/attestation-trust.js';

export const SIGNING_ALGS = ['EdDSA', 'RS256', 'ES256', 'PS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

// Client secrets are stored hashed, so HMAC (client_secret_jwt) assertions cannot be verified: asymmetric only.
export const CLIENT_AUTH_SIGNING_ALGS = ['EdDSA', 'RS256', 'PS256', 'ES256'] as const;

/** Per-realm settings (stored as JSON on the realm row). */
export const realmSettingsSchema = z
  .object({
    branding: z
      .object({
        logoUrl: z.string().url().optional(),
        primaryColor: z.string().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be a colour like #2f5bea').optional(),
      })
      .strict()
      .default({}),
    /** Default algorithm of ID tokens and JWT access tokens; clients may override the ID token's. */
    signingAlg: z.enum(SIGNING_ALGS).default('EdDSA'),
    /** Accepted algorithms for private_key_jwt / client_secret_jwt assertions at the token endpoint. */
    clientAuthSigningAlgs: z.array(z.enum(CLIENT_AUTH_SIGNING_ALGS)).nonempty().default(['EdDSA', 'RS256', 'PS256', 'ES256']),
    /** `public`: PKCE required for public clients (S256 only); `all`: for every client. */
    pkceRequired: z.enum(['public', 'all']).default('public'),
    /** Audience of access tokens when a client asks for none (client_credentials). */
    defaultAudience: z.string().url().optional(),
    /** Second factors after a password: off, optional (used when enrolled), or required (enrolment enforced). */
    mfa: z.enum(['off', 'optional', 'required']).default('optional'),
    passkeys: z
      .object({
        /**
         * WebAuthn Related Origin Requests: the primary issuer's domain is the RP ID on every issuer of the
         * realm and serves /.well-known/webauthn, so one passkey works on all of the realm's domains.
         */
        relatedOrigins: z.boolean().default(false),
        /**
         * `none` accepts any authenticator; `allowlist` requires attestation from one of `aaguids`, by a
         * certificate chain leading to one of `attestationRoots` (the makers' attestation root
         * certificates, PEM: anyone can make a certificate claiming an AAGUID). Without roots nothing passes.
         */
        attestation: z.enum(['none', 'allowlist']).default('none'),
        aaguids: z.array(z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be an AAGUID (a UUID)')).default([]),
        attestationRoots: z.array(z.string().refine(isPemCertificate, 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)')).default([]),
        /** Offer a passkey after a password sign-in; "Not now" waits this many days before asking again. */
        offerAfterPassword: z.boolean().default(true),
        offerSnoozeDays: z.number().int().nonnegative().default(30),
      })
      .strict()
      .default({ relatedOrigins: false, attestation: 'none', aaguids: [], attestationRoots: [], offerAfterPassword: true, offerSnoozeDays: 30 }),
    /**
     * Sign-ins complete only for a confirmed email address (Keycloak's "Verify email"): a user whose
     * address is not confirmed is sent a link and waits on a page until it is used. Needs email (SMTP).
     */
    requireVerifiedEmail: z.boolean().default(false),
    /** Self-service sign-up from the sign-in page (with a passkey, or a password and the passkey offer). */
    signup: z.boolean().default(false),
    /** Changes on the account page need a sign-in at most this old (seconds). */
    reauthWindowSeconds: z.number().int().positive().default(300),
    /** Resource servers (APIs) this realm issues JWT access tokens for. */
    resources: z
      .array(z.object({ uri: z.string().url(), scopes: z.array(z.string()).default([]) }).strict())
      .default([]),
  })
  .strict();

export type RealmSettings = z.infer<typeof realmSettingsSchema>;

/** The longest URL accepted where one is registered (logos, redirect and logout URIs, JWKS URIs). */
export const MAX_URL_LENGTH = 2000;

/**
 * A logo URL being written (realm settings, tenant branding): the pages show only http(s) images, so
 * anything else is refused when set instead of silently not shown. Reads keep the looser schema, so a
 * value stored earlier does not stop the realm from loading.
 */
export function logoUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  // every sign-in page carries it: a URL longer than any real logo's is a mistake, not an image
  if (value.length > MAX_URL_LENGTH) return `is ${value.length} characters long; at most ${MAX_URL_LENGTH} are allowed`;
  const protocol = URL.parse(value)?.protocol;
  return protocol === 'https:' || protocol === 'http:' ? undefined : 'must be an https (or http) URL';
}

export function parseRealmSettings(raw: unknown): RealmSettings {
  return realmSettingsSchema.parse(raw ?? {});
}
