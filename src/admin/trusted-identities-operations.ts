import { z } from 'zod';
import { defineOperation } from './operation.js';
import { bodyPathOf, namingBodyFields } from './problem.js';

/** The body field that gave each field of TrustService.add's input. */
const bodyPath = bodyPathOf({ sampleToken: 'sample_token', userIdExpression: 'user_id_expression', adminUserIds: 'admin_user_ids' });

const trustedIssuerSchema = z.object({
  id: z.string(),
  realm: z.string(),
  issuer: z.string(),
  audience: z.string(),
  user_id_expression: z.string(),
  user_id_prefix: z.string(),
  admin_user_ids: z.array(z.string()),
  created_at: z.string(),
});

const idParams = z.object({ trustedIdentityId: z.string().min(1).max(64) });

export const listTrustedIdentities = defineOperation({
  id: 'listTrustedIdentities',
  method: 'get',
  path: '/trusted-identities',
  tag: 'trusted identities',
  summary: 'List the external issuers whose JWTs this realm trusts',
  query: z.object({}).strict(),
  response: z.object({ items: z.array(trustedIssuerSchema) }),
  async handle({ realmId, services }) {
    return { items: await services.trust.list(realmId) };
  },
});

export const getTrustedIdentity = defineOperation({
  id: 'getTrustedIdentity',
  method: 'get',
  path: '/trusted-identities/{trustedIdentityId}',
  tag: 'trusted identities',
  summary: 'Get one trusted issuer',
  params: idParams,
  response: trustedIssuerSchema,
  async handle({ params, realmId, services }) {
    return services.trust.get(realmId, params.trustedIdentityId);
  },
});

export const createTrustedIdentity = defineOperation({
  id: 'createTrustedIdentity',
  method: 'post',
  path: '/trusted-identities',
  tag: 'trusted identities',
  summary:
    'Trust an external OIDC issuer: from a sample JWT (its iss and aud are read, and the User ID Expression is checked against its claims) or from an issuer URL and audience entered by hand',
  status: 201,
  body: z
    .object({
      sample_token: z.string().min(1).max(16384).optional().describe('a JWT from the issuer; its signature is not needed here'),
      issuer: z.string().max(500).optional(),
      audience: z.string().max(500).optional(),
      user_id_expression: z.string().max(500).optional().describe('default {sub}; e.g. {team}|{additional_claims.other}'),
      prefix: z.string().max(100).optional().describe('prepended to the computed user id, e.g. github|'),
      admin_user_ids: z.array(z.string().min(1).max(500)).max(100).optional().describe('computed user ids that may call this admin API'),
      id: z.string().max(64).optional(),
    })
    .strict(),
  response: trustedIssuerSchema.extend({ sample_user_id: z.string().optional() }),
  async handle({ body, realmId, services }) {
    return namingBodyFields(bodyPath, () =>
      services.trust.add({
        realmId,
        sampleToken: body.sample_token,
        issuer: body.issuer,
        audience: body.audience,
        userIdExpression: body.user_id_expression,
        prefix: body.prefix,
        adminUserIds: body.admin_user_ids,
        id: body.id,
      }),
    );
  },
});

export const deleteTrustedIdentity = defineOperation({
  id: 'deleteTrustedIdentity',
  method: 'delete',
  path: '/trusted-identities/{trustedIdentityId}',
  tag: 'trusted identities',
  summary: 'Stop trusting an issuer: its tokens are refused from now on',
  params: idParams,
  status: 204,
  async handle({ params, realmId, services }) {
    await services.trust.remove(realmId, params.trustedIdentityId);
  },
});

export const trustedIdentityOperations = [listTrustedIdentities, getTrustedIdentity, createTrustedIdentity, deleteTrustedIdentity];
