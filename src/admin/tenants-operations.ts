import { z } from 'zod';
import type { TenantBranding } from '../db/tenants-repo.js';
import type { TenantChanges } from '../tenants/service.js';
import { defineOperation } from './operation.js';
import { namingBodyFields } from './problem.js';

const brandingSchema = z
  .object({
    logoUrl: z.string().max(2000).optional().describe('https URL of the logo shown on the sign-in pages'),
    primaryColor: z.string().max(20).optional().describe('#rrggbb'),
  })
  .strict();

const tenantSchema = z.object({
  id: z.string(),
  realm: z.string(),
  display_name: z.string(),
  domains: z.array(z.string()),
  connections: z.array(z.string()),
  sso_enforced: z.boolean(),
  branding: brandingSchema,
  created_at: z.string(),
  updated_at: z.string(),
});

const tenantParams = z.object({ tenantId: z.string().min(1).max(64) });
const memberParams = z.object({ tenantId: z.string().min(1).max(64), userId: z.string().min(1).max(64) });

const writable = {
  display_name: z.string().min(1).max(200),
  domains: z.array(z.string().min(1).max(253)).max(100).describe('email domains routed to this tenant (home realm discovery)'),
  connections: z.array(z.string().min(1).max(64)).max(50).describe("ids of the realm's connections this tenant signs in with"),
  sso_enforced: z.boolean().describe("members never see a password: they sign in through the tenant's connections"),
  branding: brandingSchema,
};

/** The API's snake_case fields in TenantService's terms (absent fields stay absent: unchanged on update). */
/** The body field that gave each field of TenantService's input (branding's fields keep their names). */
const bodyPath = (field: string): string => ({ displayName: 'display_name', ssoEnforced: 'sso_enforced' })[field] ?? field;

function tenantChanges(body: { display_name?: string; domains?: string[]; connections?: string[]; sso_enforced?: boolean; branding?: TenantBranding }): TenantChanges {
  return { displayName: body.display_name, domains: body.domains, connections: body.connections, ssoEnforced: body.sso_enforced, branding: body.branding };
}

export const listTenants = defineOperation({
  id: 'listTenants',
  method: 'get',
  path: '/tenants',
  tag: 'tenants',
  summary: "List the realm's tenants",
  query: z.object({}).strict(),
  response: z.object({ items: z.array(tenantSchema) }),
  async handle({ realmId, services }) {
    return { items: await services.tenants.list(realmId) };
  },
});

export const getTenant = defineOperation({
  id: 'getTenant',
  method: 'get',
  path: '/tenants/{tenantId}',
  tag: 'tenants',
  summary: 'Get one tenant',
  params: tenantParams,
  response: tenantSchema,
  async handle({ params, realmId, services }) {
    return services.tenants.get(realmId, params.tenantId);
  },
});

export const createTenant = defineOperation({
  id: 'createTenant',
  method: 'post',
  path: '/tenants',
  tag: 'tenants',
  summary: 'Create a tenant (a customer organisation of the realm)',
  status: 201,
  body: z
    .object({
      id: z.string().min(1).max(64).describe('lower-case slug'),
      display_name: writable.display_name,
      domains: writable.domains.optional(),
      connections: writable.connections.optional(),
      sso_enforced: writable.sso_enforced.optional(),
      branding: writable.branding.optional(),
    })
    .strict(),
  response: tenantSchema,
  async handle({ body, realmId, services }) {
    return namingBodyFields(bodyPath, () => services.tenants.create(realmId, { id: body.id, ...tenantChanges(body), displayName: body.display_name }));
  },
});

export const updateTenant = defineOperation({
  id: 'updateTenant',
  method: 'patch',
  path: '/tenants/{tenantId}',
  tag: 'tenants',
  summary: 'Change a tenant; lists given here replace the stored ones',
  params: tenantParams,
  body: z
    .object({
      display_name: writable.display_name.optional(),
      domains: writable.domains.optional(),
      connections: writable.connections.optional(),
      sso_enforced: writable.sso_enforced.optional(),
      branding: writable.branding.optional(),
    })
    .strict(),
  response: tenantSchema,
  async handle({ params, body, realmId, services }) {
    return namingBodyFields(bodyPath, () => services.tenants.update(realmId, params.tenantId, tenantChanges(body)));
  },
});

export const deleteTenant = defineOperation({
  id: 'deleteTenant',
  method: 'delete',
  path: '/tenants/{tenantId}',
  tag: 'tenants',
  summary: 'Delete a tenant: its members stay users of the realm; the sign-ins made for it end (their refresh tokens and codes are revoked)',
  params: tenantParams,
  status: 204,
  async handle({ params, realmId, services }) {
    await services.tenants.delete(realmId, params.tenantId);
  },
});

export const addTenantMember = defineOperation({
  id: 'addTenantMember',
  method: 'put',
  path: '/tenants/{tenantId}/members/{userId}',
  tag: 'tenants',
  summary: 'Make a user a member of a tenant (idempotent)',
  params: memberParams,
  response: z.object({ tenant: z.string(), user: z.string(), email: z.string() }),
  async handle({ params, realmId, services }) {
    return services.tenants.addMember(realmId, params.tenantId, { userId: params.userId });
  },
});

export const removeTenantMember = defineOperation({
  id: 'removeTenantMember',
  method: 'delete',
  path: '/tenants/{tenantId}/members/{userId}',
  tag: 'tenants',
  summary: 'Remove a user from a tenant',
  params: memberParams,
  status: 204,
  async handle({ params, realmId, services }) {
    await services.tenants.removeMember(realmId, params.tenantId, { userId: params.userId });
  },
});

export const tenantOperations = [listTenants, getTenant, createTenant, updateTenant, deleteTenant, addTenantMember, removeTenantMember];
