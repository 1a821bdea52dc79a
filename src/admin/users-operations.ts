import { z } from 'zod';
import { toPublicUser } from '../accounts/user-service.js';
import type { UserSortKey } from '../db/users-repo.js';
import { notFound } from '../errors.js';
import { defineOperation } from './operation.js';
import { decodeCursor, encodeCursor } from './pagination.js';
import { ProblemError } from './problem.js';

const SORTS = { created_at: 'created_at', '-created_at': 'created_at', email: 'email_normalized', '-email': 'email_normalized' } as const satisfies Record<string, UserSortKey>;

export const userSchema = z.object({
  id: z.string(),
  realm: z.string(),
  email: z.string(),
  email_verified: z.boolean(),
  name: z.string().nullable(),
  disabled: z.boolean(),
  created_at: z.string().describe('ISO 8601'),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page') });

const limitSchema = z.coerce.number().int().min(1).max(200).default(50).describe('page size, 1 to 200 (default 50)');
const userIdParams = z.object({ userId: z.string().min(1).max(64) });

export const listUsers = defineOperation({
  id: 'listUsers',
  method: 'get',
  path: '/users',
  tag: 'users',
  summary: 'List users, optionally of one tenant or with one email; paginated by an opaque cursor',
  query: z
    .object({
      tenantId: z.string().min(1).max(64).optional().describe('only members of this tenant'),
      email: z.string().min(1).max(320).optional().describe('only the user with this email (case-insensitive)'),
      limit: limitSchema,
      cursor: z.string().max(2000).optional().describe('next_cursor of the previous page'),
      sort: z.enum(Object.keys(SORTS) as [keyof typeof SORTS, ...Array<keyof typeof SORTS>]).default('created_at').describe('created_at, -created_at, email or -email'),
    })
    .strict(),
  response: pageOf(userSchema),
  async handle({ query, realmId, services }) {
    const sort = SORTS[query.sort];
    const descending = query.sort.startsWith('-');
    const after = query.cursor ? decodeCursor<{ s: string; v: string | number; id: string }>(query.cursor, ['s', 'v', 'id']) : undefined;
    if (after && after.s !== query.sort) {
      throw new ProblemError('invalid_input', 'query.cursor: this cursor belongs to another sort order', 400, [{ field: 'query.cursor', message: 'belongs to another sort order' }]);
    }
    const rows = await services.users.list(realmId, {
      tenantId: query.tenantId,
      email: query.email,
      sort,
      descending,
      limit: query.limit + 1,
      after: after ? { value: after.v, id: after.id } : undefined,
    });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    const next = rows.length > query.limit && last ? encodeCursor({ s: query.sort, v: sort === 'created_at' ? last.createdAt : last.email.trim().toLowerCase(), id: last.id }) : null;
    return { items: page.map(toPublicUser), next_cursor: next };
  },
});

export const getUser = defineOperation({
  id: 'getUser',
  method: 'get',
  path: '/users/{userId}',
  tag: 'users',
  summary: 'Get one user',
  params: userIdParams,
  response: userSchema,
  async handle({ params, realmId, services }) {
    const user = await services.users.findById(realmId, params.userId);
    if (!user) throw notFound(`user "${params.userId}"`);
    return toPublicUser(user);
  },
});

export const createUser = defineOperation({
  id: 'createUser',
  method: 'post',
  path: '/users',
  tag: 'users',
  summary: 'Create a user (with a password, or passwordless: they sign in with a passkey or a connection)',
  status: 201,
  body: z
    .object({
      email: z.string().min(3).max(320),
      name: z.string().max(200).optional(),
      password: z.string().max(1024).optional().describe('checked against the password policy; never returned'),
      email_verified: z.boolean().optional(),
    })
    .strict(),
  response: userSchema,
  async handle({ body, realmId, services }) {
    return services.users.create({ realmId, email: body.email, name: body.name, password: body.password, emailVerified: body.email_verified });
  },
});

export const updateUser = defineOperation({
  id: 'updateUser',
  method: 'patch',
  path: '/users/{userId}',
  tag: 'users',
  summary: "Change a user's name or disable them (a disabled user cannot sign in and their tokens stop introspecting as active)",
  params: userIdParams,
  body: z.object({ name: z.string().max(200).nullable().optional(), disabled: z.boolean().optional() }).strict(),
  response: userSchema,
  async handle({ params, body, realmId, services }) {
    return services.users.update(realmId, params.userId, body);
  },
});

export const userOperations = [listUsers, getUser, createUser, updateUser];
