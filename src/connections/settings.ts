import { z } from 'zod';
import { invalidField, InvalidFieldsError, type FieldProblem } from '../errors.js';
import { optionalName } from '../display-name.js';

export const PRESETS = ['google', 'github', 'entra', 'gitlab'] as const;
export type Preset = (typeof PRESETS)[number];
export const CONNECTION_TYPES = ['oidc', 'oauth2'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** Hosts that may be reached over plain http (RFC 6761 loopback names), for local and test upstreams. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '127.0.0.1' || hostname === '[::1]';
}

const upstreamUrl = (what: string) =>
  z.string().refine(
    (value) => {
      try {
        const url = new URL(value);
        if (url.hash || url.username || url.password) return false;
        return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
      } catch {
        return false;
      }
    },
    { message: `${what} must be an absolute https URL (http only for localhost) without a fragment or credentials` },
  );

/** A JSON path into the userinfo document, e.g. `id`, `email`, `profile.avatar`. */
const claimPath = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a claim path is one or more property names joined by dots');

export const claimMappingSchema = z
  .object({
    sub: claimPath,
    email: claimPath.optional(),
    email_verified: claimPath.optional(),
    name: claimPath.optional(),
    picture: claimPath.optional(),
  })
  .strict();
export type ClaimMapping = z.infer<typeof claimMappingSchema>;

const scopesSchema = z.array(z.string().max(200, 'a scope is at most 200 characters').regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes')).max(30);

/** What is stored in `connections.config` for an OpenID Connect upstream. */
export const oidcConfigSchema = z
  .object({
    clientId: z.string().min(1).max(500),
    issuer: upstreamUrl('the issuer'),
    scopes: scopesSchema,
  })
  .strict();

/** What is stored in `connections.config` for a plain OAuth 2.0 upstream. */
export const oauth2ConfigSchema = z
  .object({
    clientId: z.string().min(1).max(500),
    authorizationEndpoint: upstreamUrl('the authorization endpoint'),
    tokenEndpoint: upstreamUrl('the token endpoint'),
    userinfoEndpoint: upstreamUrl('the userinfo endpoint'),
    /** GitHub's `/user/emails`: only verified addresses count, the primary one wins. */
    emailsEndpoint: upstreamUrl('the emails endpoint').optional(),
    scopes: scopesSchema,
    claims: claimMappingSchema,
  })
  .strict();

export type OidcConfig = z.infer<typeof oidcConfigSchema>;
export type OAuth2Config = z.infer<typeof oauth2ConfigSchema>;
export type UpstreamConfig = ({ type: 'oidc' } & OidcConfig) | ({ type: 'oauth2' } & OAuth2Config);

export interface ConnectionInput {
  realmId: string;
  id: string;
  preset?: string;
  type?: string;
  name?: string;
  clientId: string;
  clientSecret?: string;
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  userinfoEndpoint?: string;
  claims?: Record<string, string>;
  scopes?: string[];
  tenantIds?: string[];
  /** Microsoft Entra ID: the directory (tenant) id the connection signs in against. */
  entraTenant?: string;
  /** Overrides a preset's base URL (GitLab self-managed, GitHub Enterprise, a test stub). */
  baseUrl?: string;
  /** GitHub preset: the API base (default https://api.github.com, or `<baseUrl>/api/v3` with a base URL). */
  apiBaseUrl?: string;
}

const PRESET_NAMES: Record<Preset, string> = { google: 'Google', github: 'GitHub', entra: 'Microsoft', gitlab: 'GitLab' };
const ENTRA_TENANT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/**
 * The schema's issues as problems of the input's fields. A preset's issuer and endpoints are built from
 * its base URL (and GitHub's API base URL): a problem with them is a problem of what was given.
 */
function problems(err: z.ZodError, input: ConnectionInput): FieldProblem[] {
  const fromBase = (key: string): string => {
    if (input.preset === undefined) return key;
    if ((key === 'userinfoEndpoint' || key === 'emailsEndpoint') && input.apiBaseUrl !== undefined) return 'apiBaseUrl';
    return ['issuer', 'authorizationEndpoint', 'tokenEndpoint', 'userinfoEndpoint', 'emailsEndpoint'].includes(key) ? 'baseUrl' : key;
  };
  return err.issues.flatMap((i) => {
    const [head, ...rest] = i.path.map(String);
    const field = [fromBase(head ?? ''), ...rest].filter(Boolean).join('.');
    // zod names neither what is missing nor the key it does not know; a field of its own says both
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: [field, k].filter(Boolean).join('.'), problem: 'is not a setting of this connection type' }));
    if (i.code === 'invalid_type' && i.input === undefined) return [{ field, problem: `is required for ${input.type === undefined ? 'this preset' : `an ${input.type} connection`}` }];
    return [{ field, problem: i.message }];
  });
}

/** Validates the input and fills in a preset: the type, display name and config to store. */
export function resolveUpstreamConfig(input: ConnectionInput): { type: ConnectionType; preset: Preset | null; displayName: string; config: UpstreamConfig } {
  const preset = input.preset;
  const subject = `connection "${input.id}": `;
  const wrong = (field: string, problem: string) => invalidField(field, problem, subject);
  if (preset !== undefined && !(PRESETS as readonly string[]).includes(preset)) throw wrong('preset', `unknown preset "${preset}": use one of ${PRESETS.join(', ')}`);
  if (preset !== undefined && input.type !== undefined) throw wrong('type', 'give either a preset or a type, not both');
  if (preset === undefined && input.type === undefined) throw wrong('preset', `a connection needs a preset (${PRESETS.join(', ')}) or a type (oidc, oauth2)`);
  if (input.type !== undefined && !(CONNECTION_TYPES as readonly string[]).includes(input.type)) throw wrong('type', `unknown connection type "${input.type}": use oidc or oauth2`);
  if (preset !== 'entra' && input.entraTenant !== undefined) throw wrong('entraTenant', 'the Entra tenant applies to the entra preset only');
  if (preset !== 'github' && input.apiBaseUrl !== undefined) throw wrong('apiBaseUrl', 'the API base URL applies to the github preset only');
  if (preset === undefined && input.baseUrl !== undefined) throw wrong('baseUrl', 'a base URL applies to presets only; give the issuer or the endpoints instead');
  const upstreamFields = (['issuer', 'authorizationEndpoint', 'tokenEndpoint', 'userinfoEndpoint', 'claims'] as const).filter((k) => input[k]);
  if (preset !== undefined && upstreamFields.length) {
    throw wrong(upstreamFields[0], `the ${preset} preset sets the issuer, endpoints and claims itself; to change where it points, give a base URL`);
  }
  const base = input.baseUrl === undefined ? undefined : trimSlash(input.baseUrl);
  // shown on the sign-in pages' buttons: the shared name rule (src/display-name.ts)
  const displayName = optionalName(input.name, 'name', { subject }) ?? (preset ? PRESET_NAMES[preset as Preset] : input.id);

  let raw: Record<string, unknown>;
  let type: ConnectionType;
  switch (preset) {
    case 'google':
      type = 'oidc';
      raw = { issuer: base ?? 'https://accounts.google.com', scopes: input.scopes ?? ['openid', 'email', 'profile'] };
      break;
    case 'gitlab':
      type = 'oidc';
      raw = { issuer: base ?? 'https://gitlab.com', scopes: input.scopes ?? ['openid', 'email', 'profile'] };
      break;
    case 'entra':
      type = 'oidc';
      if (!input.entraTenant || !ENTRA_TENANT.test(input.entraTenant)) {
        throw wrong('entraTenant', 'the entra preset needs the directory (tenant) id, a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47 (multi-tenant "common" is not supported: its tokens name each tenant as issuer)');
      }
      raw = { issuer: `${base ?? 'https://login.microsoftonline.com'}/${input.entraTenant.toLowerCase()}/v2.0`, scopes: input.scopes ?? ['openid', 'email', 'profile'] };
      break;
    case 'github': {
      type = 'oauth2';
      const web = base ?? 'https://github.com';
      const api = input.apiBaseUrl ? trimSlash(input.apiBaseUrl) : base ? `${base}/api/v3` : 'https://api.github.com';
      raw = {
        authorizationEndpoint: `${web}/login/oauth/authorize`,
        tokenEndpoint: `${web}/login/oauth/access_token`,
        userinfoEndpoint: `${api}/user`,
        emailsEndpoint: `${api}/user/emails`,
        scopes: input.scopes ?? ['read:user', 'user:email'],
        claims: { sub: 'id', name: 'name', picture: 'avatar_url' },
      };
      break;
    }
    default:
      type = input.type as ConnectionType;
      raw =
        type === 'oidc'
          ? { issuer: input.issuer, scopes: input.scopes ?? ['openid', 'email', 'profile'] }
          : {
              authorizationEndpoint: input.authorizationEndpoint,
              tokenEndpoint: input.tokenEndpoint,
              userinfoEndpoint: input.userinfoEndpoint,
              scopes: input.scopes ?? [],
              claims: input.claims ?? {},
            };
      if (type === 'oidc' && upstreamFields.some((k) => k !== 'issuer')) {
        throw wrong(upstreamFields.find((k) => k !== 'issuer')!, 'an oidc connection finds its endpoints and claims by discovery: give only the issuer');
      }
      if (type === 'oauth2' && input.issuer) throw wrong('issuer', 'an oauth2 connection has no issuer: give the authorization, token and userinfo endpoints and a claim mapping');
  }
  if (type === 'oidc' && !(raw.scopes as string[]).includes('openid')) raw.scopes = ['openid', ...(raw.scopes as string[])];
  const schema = type === 'oidc' ? oidcConfigSchema : oauth2ConfigSchema;
  const parsed = schema.safeParse({ clientId: input.clientId, ...raw });
  if (!parsed.success) throw new InvalidFieldsError(problems(parsed.error, input), subject);
  return { type, preset: (preset as Preset | undefined) ?? null, displayName, config: { type, ...parsed.data } as UpstreamConfig };
}
