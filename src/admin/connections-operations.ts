import { z } from 'zod';
import { CONNECTION_TYPES, PRESETS } from '../connections/settings.js';
import { defineOperation } from './operation.js';
import { bodyPathOf, namingBodyFields } from './problem.js';

/** The body field that gave each field of ConnectionService.create's input (`claims.sub` stays, `scopes.1` is `scopes[1]`). */
const BODY_FIELDS: Record<string, string> = {
  clientId: 'client_id',
  clientSecret: 'client_secret',
  authorizationEndpoint: 'authorization_endpoint',
  tokenEndpoint: 'token_endpoint',
  userinfoEndpoint: 'userinfo_endpoint',
  tenantIds: 'tenants',
  baseUrl: 'base_url',
  entraTenant: 'entra_tenant',
};
const bodyPath = bodyPathOf(BODY_FIELDS);

const connectionSchema = z.object({
  id: z.string(),
  realm: z.string(),
  type: z.enum(CONNECTION_TYPES),
  preset: z.string().nullable(),
  name: z.string(),
  client_id: z.string(),
  issuer: z.string().optional(),
  authorization_endpoint: z.string().optional(),
  token_endpoint: z.string().optional(),
  userinfo_endpoint: z.string().optional(),
  emails_endpoint: z.string().optional(),
  scopes: z.array(z.string()),
  claims: z.record(z.string(), z.string()).optional(),
  has_client_secret: z.boolean().describe('the secret itself is stored encrypted and never returned'),
  tenants: z.array(z.string()),
  enabled: z.boolean(),
  redirect_uris: z.array(z.string()).describe('register these at the upstream provider'),
  created_at: z.string(),
});

const idParams = z.object({ connectionId: z.string().min(1).max(64) });

export const listConnections = defineOperation({
  id: 'listConnections',
  method: 'get',
  path: '/connections',
  tag: 'connections',
  summary: "List the realm's upstream identity providers",
  query: z.object({}).strict(),
  response: z.object({ items: z.array(connectionSchema) }),
  async handle({ realmId, services }) {
    return { items: await services.connections.list(realmId) };
  },
});

export const getConnection = defineOperation({
  id: 'getConnection',
  method: 'get',
  path: '/connections/{connectionId}',
  tag: 'connections',
  summary: 'Get one connection (never its client secret)',
  params: idParams,
  response: connectionSchema,
  async handle({ params, realmId, services }) {
    return services.connections.get(realmId, params.connectionId);
  },
});

export const createConnection = defineOperation({
  id: 'createConnection',
  method: 'post',
  path: '/connections',
  tag: 'connections',
  summary: 'Add an upstream identity provider: a preset (google, github, entra, gitlab), generic OpenID Connect, or generic OAuth 2.0 with a claim mapping',
  status: 201,
  body: z
    .object({
      id: z.string().min(1).max(64),
      preset: z.enum(PRESETS).optional(),
      type: z.enum(CONNECTION_TYPES).optional().describe('without a preset: oidc (needs issuer) or oauth2 (needs the endpoints and claims)'),
      name: z.string().max(200).optional(),
      client_id: z.string().min(1).max(500),
      client_secret: z.string().min(1).max(2000).optional().describe('stored encrypted; never returned'),
      issuer: z.string().max(500).optional(),
      authorization_endpoint: z.string().max(2000).optional(),
      token_endpoint: z.string().max(2000).optional(),
      userinfo_endpoint: z.string().max(2000).optional(),
      claims: z.record(z.string(), z.string()).optional().describe('oauth2: which userinfo property holds sub, email, email_verified, name, picture'),
      scopes: z.array(z.string()).max(30).optional(),
      tenants: z.array(z.string().min(1).max(64)).optional().describe('limit the connection to these tenants'),
      entra_tenant: z.string().optional().describe('entra preset: the directory (tenant) id'),
      base_url: z.string().max(2000).optional().describe("overrides a preset's base URL (GitLab self-managed, GitHub Enterprise)"),
    })
    .strict(),
  response: connectionSchema,
  async handle({ body, realmId, services }) {
    return namingBodyFields(bodyPath, () =>
      services.connections.create({
        realmId,
        id: body.id,
        preset: body.preset,
        type: body.type,
        name: body.name,
        clientId: body.client_id,
        clientSecret: body.client_secret,
        issuer: body.issuer,
        authorizationEndpoint: body.authorization_endpoint,
        tokenEndpoint: body.token_endpoint,
        userinfoEndpoint: body.userinfo_endpoint,
        claims: body.claims,
        scopes: body.scopes,
        tenantIds: body.tenants,
        entraTenant: body.entra_tenant,
        baseUrl: body.base_url,
      }),
    );
  },
});

export const updateConnection = defineOperation({
  id: 'updateConnection',
  method: 'patch',
  path: '/connections/{connectionId}',
  tag: 'connections',
  summary: 'Turn a connection off (its button disappears and its sign-ins are refused; links to users are kept) or back on',
  params: idParams,
  body: z.object({ enabled: z.boolean() }).strict(),
  response: connectionSchema,
  async handle({ params, body, realmId, services }) {
    return services.connections.setEnabled(realmId, params.connectionId, body.enabled);
  },
});

export const deleteConnection = defineOperation({
  id: 'deleteConnection',
  method: 'delete',
  path: '/connections/{connectionId}',
  tag: 'connections',
  summary: 'Remove a connection (its links to users go with it; the users stay)',
  params: idParams,
  status: 204,
  async handle({ params, realmId, services }) {
    await services.connections.remove(realmId, params.connectionId);
  },
});

export const connectionOperations = [listConnections, getConnection, createConnection, updateConnection, deleteConnection];
