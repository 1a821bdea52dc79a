import { z } from 'zod';
import type { AuthorizationModule, IssuedIdentity } from './module.js';

/** Options of the built-in `static-rules` module (config: authorization.options). */
export const staticRulesSchema = z
  .object({
    /** Clients (client_id) that may receive no tokens at all. */
    denyClients: z.array(z.string()).default([]),
    /** Claims added to every access token, e.g. { "https://example.com/env": "prod" }. */
    accessTokenClaims: z.record(z.string(), z.unknown()).default({}),
    /** Permission grants: who (subject or client id, `*` for anyone) may do what on which resource (`*` suffix = prefix match). */
    grants: z
      .array(
        z
          .object({
            subject: z.string().optional(),
            client: z.string().optional(),
            resource: z.string(),
            permissions: z.array(z.string()).nonempty(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

const matches = (pattern: string | undefined, value: string | undefined): boolean =>
  pattern === undefined || pattern === '*' || pattern === value;

const resourceMatches = (pattern: string, uri: string): boolean =>
  pattern === '*' || pattern === uri || (pattern.endsWith('*') && uri.startsWith(pattern.slice(0, -1)));

/** Allows everything: the default. */
export function allowAllModule(): AuthorizationModule {
  return {
    name: 'allow-all',
    async onIssue() {
      return { allow: true };
    },
    async check() {
      return true;
    },
  };
}

/** An operator-configured module: deny lists, static claims and permission grants from the config file. */
export function staticRulesModule(rawOptions: unknown): AuthorizationModule {
  const options = staticRulesSchema.parse(rawOptions ?? {});
  return {
    name: 'static-rules',
    async onIssue(identity: IssuedIdentity) {
      if (options.denyClients.includes(identity.clientId)) {
        return { allow: false, reason: `client ${identity.clientId} is not allowed to receive tokens` };
      }
      return { allow: true, claims: identity.token === 'access_token' ? options.accessTokenClaims : undefined };
    },
    async check(identity, resourceUri, permission) {
      return options.grants.some(
        (g) =>
          (g.subject !== undefined ? matches(g.subject, identity.subject) : true) &&
          (g.client !== undefined ? matches(g.client, identity.clientId) : true) &&
          (g.subject !== undefined || g.client !== undefined) &&
          resourceMatches(g.resource, resourceUri) &&
          (g.permissions.includes(permission) || g.permissions.includes('*')),
      );
    },
  };
}
