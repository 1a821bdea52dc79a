import { z } from 'zod';
import { AUTH_METHODS, CLIENT_SCOPES, GRANT_TYPES, type UpdateClientInput } from '../clients/service.js';
import { SIGNING_ALGS } from '../realms/settings.js';
import { defineOperation } from './operation.js';
import { bodyPathOf, namingBodyFields } from './problem.js';

const clientSchema = z.object({
  client_id: z.string(),
  realm: z.string(),
  name: z.string(),
  public: z.boolean(),
  first_party: z.boolean().describe('first-party clients skip the consent page'),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
  id_token_signed_response_alg: z.string().optional(),
  scope: z.string().optional(),
  admin_api: z.boolean().optional(),
  application_type: z.enum(['web', 'native']),
  backchannel_logout_uri: z.string().optional(),
  frontchannel_logout_uri: z.string().optional(),
  frontchannel_logout_session_required: z.boolean().optional(),
});

const idParams = z.object({ clientId: z.string().min(1).max(200) });
const uris = (what: string) => z.array(z.string().min(1).max(2000)).max(100).describe(`${what}, matched exactly`);
const grants = z.array(z.enum(GRANT_TYPES)).min(1).max(GRANT_TYPES.length);
const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())).max(100) }).passthrough().describe("the client's public keys (private_key_jwt)");
const scope = z.string().max(500).describe(`space-separated, of ${CLIENT_SCOPES.join(', ')}`);

/** What a client is created with and can be changed by (a PATCH: every field optional). */
const settingsSchema = z.object({
  name: z.string().min(1).max(200).optional(),
  redirect_uris: uris('where the authorization response may go').optional(),
  post_logout_redirect_uris: uris('where RP-initiated logout may return').optional(),
  grant_types: grants.optional().describe('on creation, default: authorization_code and refresh_token'),
  first_party: z.boolean().optional(),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS).optional(),
  jwks_uri: z.string().max(2000).optional(),
  jwks: jwks.optional(),
  scope: scope.optional(),
  admin_api: z.boolean().optional().describe('may get client_credentials tokens for this admin API'),
  backchannel_logout_uri: z
    .string()
    .min(1)
    .max(2000)
    .nullable()
    .optional()
    .describe('OpenID Connect Back-Channel Logout: where a logout token is posted when a session of this client ends; null removes it'),
  frontchannel_logout_uri: z
    .string()
    .min(1)
    .max(2000)
    .nullable()
    .optional()
    .describe("OpenID Connect Front-Channel Logout: the application's page the sign-out page loads in a hidden iframe when a session of this client ends; null removes it"),
  frontchannel_logout_session_required: z
    .boolean()
    .optional()
    .describe('with frontchannel_logout_uri: add iss and sid to its query (default true)'),
});

/** The body field that gave each field of ClientService's input (`redirectUris.1` is `redirect_uris[1]`). */
const bodyPath = bodyPathOf({
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  grants: 'grant_types',
  firstParty: 'first_party',
  idTokenAlg: 'id_token_signed_response_alg',
  jwksUri: 'jwks_uri',
  adminApi: 'admin_api',
  authMethod: 'token_endpoint_auth_method',
  backchannelLogoutUri: 'backchannel_logout_uri',
  frontchannelLogoutUri: 'frontchannel_logout_uri',
  frontchannelLogoutSessionRequired: 'frontchannel_logout_session_required',
});

/** Those settings from the API's names to ClientService's. */
function settingsOf(body: z.infer<typeof settingsSchema>): UpdateClientInput {
  return {
    name: body.name,
    redirectUris: body.redirect_uris,
    postLogoutRedirectUris: body.post_logout_redirect_uris,
    grants: body.grant_types,
    firstParty: body.first_party,
    idTokenAlg: body.id_token_signed_response_alg,
    jwksUri: body.jwks_uri,
    jwks: body.jwks,
    scope: body.scope,
    adminApi: body.admin_api,
    backchannelLogoutUri: body.backchannel_logout_uri,
    frontchannelLogoutUri: body.frontchannel_logout_uri,
    frontchannelLogoutSessionRequired: body.frontchannel_logout_session_required,
  };
}

export const listClients = defineOperation({
  id: 'listClients',
  method: 'get',
  path: '/clients',
  tag: 'clients',
  summary: "List the realm's applications (OAuth clients); never their secrets",
  query: z.object({}).strict(),
  response: z.object({ items: z.array(clientSchema) }),
  async handle({ realmId, services }) {
    return { items: await services.clients.list(realmId) };
  },
});

export const getClient = defineOperation({
  id: 'getClient',
  method: 'get',
  path: '/clients/{clientId}',
  tag: 'clients',
  summary: 'Get one application (never its secret)',
  params: idParams,
  response: clientSchema,
  async handle({ params, realmId, services }) {
    return services.clients.get(realmId, params.clientId);
  },
});

export const createClient = defineOperation({
  id: 'createClient',
  method: 'post',
  path: '/clients',
  tag: 'clients',
  summary: 'Register an application; a confidential client gets its client_secret in this response only (it is stored hashed)',
  status: 201,
  body: settingsSchema
    .extend({
      name: z.string().min(1).max(200),
      public: z.boolean().optional().describe('a browser or mobile app without a secret (PKCE)'),
      native: z.boolean().optional().describe('a desktop or mobile app (RFC 8252): public; private-use schemes and loopback redirect URIs'),
      token_endpoint_auth_method: z.enum(AUTH_METHODS.filter((m) => m !== 'none') as [string, ...string[]]).optional(),
    })
    .strict(),
  response: clientSchema.extend({ client_secret: z.string().optional().describe('shown once') }),
  async handle({ body, realmId, services }) {
    return namingBodyFields(bodyPath, () =>
      services.clients.create({
        realmId,
        ...settingsOf(body),
        name: body.name,
        public: body.public,
        native: body.native,
        authMethod: body.token_endpoint_auth_method,
        backchannelLogoutUri: body.backchannel_logout_uri ?? undefined,
        frontchannelLogoutUri: body.frontchannel_logout_uri ?? undefined,
      }),
    );
  },
});

export const updateClient = defineOperation({
  id: 'updateClient',
  method: 'patch',
  path: '/clients/{clientId}',
  tag: 'clients',
  summary: "Change an application's name, redirect URIs, grants, first-party flag, ID token algorithm, keys or scope; a list given replaces the stored one (public, native and the auth method stay)",
  params: idParams,
  body: settingsSchema.strict(),
  response: clientSchema,
  async handle({ params, body, realmId, services }) {
    return namingBodyFields(bodyPath, () => services.clients.update(realmId, params.clientId, settingsOf(body)));
  },
});

export const rotateClientSecret = defineOperation({
  id: 'rotateClientSecret',
  method: 'post',
  path: '/clients/{clientId}/rotate-secret',
  tag: 'clients',
  summary: 'Give a confidential application a new client_secret (in this response only); the old one stops working at once',
  params: idParams,
  response: z.object({ client_id: z.string(), client_secret: z.string(), realm: z.string() }),
  async handle({ params, realmId, services }) {
    return services.clients.rotateSecret(realmId, params.clientId);
  },
});

export const deleteClient = defineOperation({
  id: 'deleteClient',
  method: 'delete',
  path: '/clients/{clientId}',
  tag: 'clients',
  summary: 'Delete an application and revoke its grants, refresh tokens and codes (JWT access tokens it holds end at their expiry)',
  params: idParams,
  status: 204,
  async handle({ params, realmId, services }) {
    await services.clients.delete(realmId, params.clientId);
  },
});

export const clientOperations = [listClients, getClient, createClient, updateClient, rotateClientSecret, deleteClient];
