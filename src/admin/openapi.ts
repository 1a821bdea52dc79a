import { z } from 'zod';
import { ADMIN_API_AUDIENCE } from './audience.js';
import type { Operation } from './operation.js';

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details; `errors` names each invalid field.',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } }, required: ['field', 'message'] } },
  },
  required: ['type', 'title', 'status', 'code', 'detail'],
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(op: Operation): unknown[] {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', op.params], ['query', op.query]] as const) {
    if (!schema) continue;
    const s = jsonSchema(schema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      const { description, ...rest } = prop;
      out.push({ name, in: where, required: where === 'path' || (s.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest });
    }
  }
  return out;
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });

/** OpenAPI 3.1 document of the admin API, generated from the operations' own schemas. */
export function openApiDocument(operations: Operation[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const status = String(op.status ?? 200);
    const responses: Record<string, unknown> = {
      [status]: op.status === 204 || !op.response ? { description: 'Done' } : { description: 'OK', content: { 'application/json': { schema: jsonSchema(op.response, 'output') } } },
      '400': problem('Invalid input: `errors` names each bad field'),
      '401': problem('Missing, invalid or expired access token'),
      '403': problem('The token lacks the scope, or the authorization module denies it'),
    };
    if (op.path.includes('{')) responses['404'] = problem('Not found');
    if (op.method === 'post' || op.method === 'put') responses['409'] = problem('Conflicts with an existing resource');
    if (op.id === 'unlinkUserIdentity') responses['409'] = problem("The link is the user's only way to sign in (pass force=true)");
    (paths[op.path] ??= {})[op.method] = {
      operationId: op.id,
      tags: [op.tag],
      summary: op.summary,
      parameters: parameters(op),
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey admin API',
      version: '1.0.0',
      description:
        `Manage one realm: its users, tenants, connections and trusted identities. Authenticate with a bearer token: ` +
        `a client_credentials access token of this realm requested with resource=${ADMIN_API_AUDIENCE} and scope "admin" (or "admin:read") ` +
        `by a client created with \`latchkey client create --admin-api\`, or a JWT of a trusted issuer whose computed user id is registered as an admin.`,
    },
    servers: [{ url: '__SERVER__' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Problem: problemSchema },
    },
    paths,
  };
}
