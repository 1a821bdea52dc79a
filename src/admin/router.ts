import type { Context, Next } from 'koa';
import type { ServedIssuer } from '../oidc/providers.js';
import type { Services } from '../server/services.js';
import { readJsonObject } from '../server/body.js';
import { ADMIN_API_AUDIENCE, ADMIN_PREFIX } from './audience.js';
import { authenticateAdmin } from './auth.js';
import { openApiDocument } from './openapi.js';
import type { Operation } from './operation.js';
import { nulFields } from './nul-characters.js';
import { invalidFields, ProblemError, sendProblem, type FieldError } from './problem.js';

const BODY_LIMIT = 64 * 1024;

interface Route {
  op: Operation;
  pattern: RegExp;
  names: string[];
}

function compile(op: Operation): Route {
  const names: string[] = [];
  const source = op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { op, pattern: new RegExp(`^${source}$`), names };
}

function queryObject(ctx: Context): Record<string, string | string[]> {
  return ctx.query as Record<string, string | string[]>;
}

/** A path segment, percent-decoded; malformed encoding (`%ZZ`) is the caller's mistake, a 400 naming it. */
function decodePathParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    const message = 'is not valid percent-encoding';
    throw new ProblemError('invalid_input', `invalid request path: path.${name}: ${message}`, 400, [{ field: `path.${name}`, message }]);
  }
}

/**
 * The operation's path with the decoded parameters, each encoded one way (encodeURIComponent): the
 * resource the authorization module is asked about. The request's own spelling would let
 * `/users/%61da` reach user "ada" while the module is asked about another resource than `/users/ada`.
 */
function canonicalPath(op: Operation, params: Record<string, string>): string {
  return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''));
}

/** A 400 naming every field of this request part that holds a NUL character or an unpaired surrogate. */
function refuseNul(where: 'path' | 'query' | 'body', value: unknown): void {
  const fields: FieldError[] = nulFields(where, value);
  if (fields.length) throw new ProblemError('invalid_input', `invalid request ${where}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, 400, fields);
}

/** The admin API below /api/v1: OpenAPI document, authentication, authorization, validation, problem+json. */
export function adminApi(services: Services, operations: Operation[]) {
  const routes = operations.map(compile);
  let document: string | undefined;

  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path !== ADMIN_PREFIX && !ctx.path.startsWith(`${ADMIN_PREFIX}/`)) return next();
    const served: ServedIssuer = ctx.state.served;
    try {
      const path = ctx.path.slice(ADMIN_PREFIX.length) || '/';
      if (path === '/openapi.json' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        document ??= JSON.stringify(openApiDocument(operations));
        ctx.type = 'application/json';
        ctx.set('Cache-Control', 'public, max-age=300');
        ctx.body = document.replace('"__SERVER__"', JSON.stringify(`${served.issuer}${ADMIN_PREFIX}`));
        return;
      }
      const method = ctx.method.toLowerCase();
      const matching = routes.map((r) => ({ r, m: r.pattern.exec(path) })).filter((x) => x.m);
      if (!matching.length) throw new ProblemError('not_found', `no admin API operation at ${ADMIN_PREFIX}${path} (see ${ADMIN_PREFIX}/openapi.json)`, 404);
      const hit = matching.find((x) => x.r.op.method === method || (method === 'head' && x.r.op.method === 'get'));
      if (!hit) {
        ctx.set('Allow', [...new Set(matching.map((x) => x.r.op.method.toUpperCase()))].join(', '));
        throw new ProblemError('method_not_allowed', `${ctx.method} is not supported on ${ADMIN_PREFIX}${path}`, 405);
      }
      const { op } = hit.r;

      const principal = await authenticateAdmin(ctx, services, served);
      const writes = op.method !== 'get';
      if (writes && principal.access !== 'write') throw new ProblemError('insufficient_scope', `${op.id} changes data: it needs the "admin" scope, the token has only "admin:read"`, 403);
      const rawParams = Object.fromEntries(hit.r.names.map((n, i) => [n, decodePathParam(n, hit.m![i + 1]!)]));
      refuseNul('path', rawParams);

      const resourceUri = `${ADMIN_API_AUDIENCE}${canonicalPath(op, rawParams)}`;
      const permission = writes ? 'write' : 'read';
      const allowed = await services.authz.check({ realmId: served.realm.id, issuer: served.issuer, clientId: principal.clientId ?? `trusted:${principal.trustedIssuerId}`, subject: principal.subject }, resourceUri, permission);
      if (!allowed) throw new ProblemError('forbidden', `the authorization module does not allow "${permission}" on ${resourceUri} for ${principal.subject}`, 403);

      refuseNul('query', queryObject(ctx));
      const params = op.params ? op.params.safeParse(rawParams) : { success: true as const, data: rawParams };
      if (!params.success) throw invalidFields('path', params.error);
      const query = op.query ? op.query.safeParse(queryObject(ctx)) : { success: true as const, data: {} };
      if (!query.success) throw invalidFields('query', query.error);
      let body: unknown;
      if (op.body) {
        const raw = await readJsonObject(ctx, BODY_LIMIT);
        refuseNul('body', raw);
        const parsed = op.body.safeParse(raw);
        if (!parsed.success) throw invalidFields('body', parsed.error);
        body = parsed.data;
      }
      const result = await op.handle({ params: params.data, query: query.data, body, principal, realmId: served.realm.id, served, services, ctx });
      ctx.set('Cache-Control', 'no-store');
      ctx.status = op.status ?? 200;
      if (op.status !== 204) ctx.body = result;
    } catch (err) {
      sendProblem(ctx, err);
    }
  };
}
