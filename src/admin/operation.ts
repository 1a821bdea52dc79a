import type { Context } from 'koa';
import type { z } from 'zod';
import type { ServedIssuer } from '../oidc/providers.js';
import type { Services } from '../server/services.js';
import type { AdminPrincipal } from './auth.js';

export interface OperationInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: AdminPrincipal;
  realmId: string;
  served: ServedIssuer;
  services: Services;
  ctx: Context;
}

/**
 * One admin API operation: its route, the schemas that validate its input (and describe it in the
 * OpenAPI document), and a thin handler that calls a capability's service.
 */
export interface Operation<P = any, Q = any, B = any> {
  id: string;
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  /** OpenAPI-style path below /api/v1, e.g. `/tenants/{tenantId}`. */
  path: string;
  tag: string;
  summary: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Schema of a successful response body (documentation). */
  response?: z.ZodType;
  /** Success status: 200 by default, 201 for creations, 204 for deletions. */
  status?: 200 | 201 | 204;
  handle(input: OperationInput<P, Q, B>): Promise<unknown>;
}

export const defineOperation = <P, Q, B>(op: Operation<P, Q, B>): Operation<P, Q, B> => op;
