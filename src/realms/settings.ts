import { z } from 'zod';

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
    /** Resource servers (APIs) this realm issues JWT access tokens for. */
    resources: z
      .array(z.object({ uri: z.string().url(), scopes: z.array(z.string()).default([]) }).strict())
      .default([]),
  })
  .strict();

export type RealmSettings = z.infer<typeof realmSettingsSchema>;

export function parseRealmSettings(raw: unknown): RealmSettings {
  return realmSettingsSchema.parse(raw ?? {});
}
