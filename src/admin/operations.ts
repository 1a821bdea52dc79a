import type { Operation } from './operation.js';
import { clientOperations } from './clients-operations.js';
import { connectionOperations } from './connections-operations.js';
import { tenantOperations } from './tenants-operations.js';
import { trustedIdentityOperations } from './trusted-identities-operations.js';
import { userOperations } from './users-operations.js';

/** Every admin API operation, in the order the OpenAPI document lists them. */
export const adminOperations: Operation[] = [...userOperations, ...clientOperations, ...tenantOperations, ...connectionOperations, ...trustedIdentityOperations];
