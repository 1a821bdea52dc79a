import { z } from 'zod';
import { classifyImportedHash } from '../accounts/imported-hash.js';
import { toPublicUser, USER_SORTS, type UserSort } from '../accounts/user-service.js';
import { operatorUnlink, publicIdentity } from '../connections/account-linking.js';
import { sessionsOfUser, toPublicSession } from '../accounts/device-activity.js';
import { LatchkeyError, notFound } from '../errors.js';
import { defineOperation } from './operation.js';
import { namingBodyFields, ProblemError } from './problem.js';

/** The body field that gave each field of UserService's input (the same names). */
const bodyPath = (field: string): string => (field === 'temporaryPassword' ? 'temporary_password' : field);


export const userSchema = z.object({
  id: z.string(),
  realm: z.string(),
  email: z.string(),
  email_verified: z.boolean(),
  name: z.string().nullable(),
  disabled: z.boolean(),
  password_change_required: z.boolean().describe('the password is a temporary one: the next sign-in asks for a new one before it completes'),
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
      sort: z.enum(Object.keys(USER_SORTS) as [UserSort, ...UserSort[]]).default('created_at').describe('created_at, -created_at, email or -email'),
    })
    .strict(),
  response: pageOf(userSchema),
  async handle({ query, realmId, services }) {
    try {
      const page = await services.users.list(realmId, query);
      return { items: page.users, next_cursor: page.next_cursor };
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'invalid_cursor') throw new ProblemError('invalid_input', `query.${err.message}`, 400, [{ field: 'query.cursor', message: err.message }]);
      throw err;
    }
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
      password_hash: z
        .string()
        .max(512)
        .optional()
        .describe('instead of password, for a user moved from another identity provider: an argon2 PHC string or a bcrypt hash of their password, replaced by argon2id at their first sign-in; never returned'),
      email_verified: z.boolean().optional(),
      temporary_password: z.boolean().optional().describe('with password: the user must choose a new password at their next sign-in'),
    })
    .strict(),
  response: userSchema,
  async handle({ body, realmId, services }) {
    let passwordHash: string | undefined;
    if (body.password_hash !== undefined) {
      if (body.password !== undefined) throw new ProblemError('invalid_input', 'give password or password_hash, not both', 400, [{ field: 'body.password_hash', message: 'cannot be given with password' }]);
      const found = classifyImportedHash(body.password_hash.trim());
      if ('problem' in found) throw new ProblemError('invalid_input', `password_hash ${found.problem}`, 400, [{ field: 'body.password_hash', message: found.problem }]);
      passwordHash = body.password_hash.trim();
    }
    return namingBodyFields(bodyPath, () => services.users.create({
        realmId,
        email: body.email,
        name: body.name,
        password: body.password,
        temporaryPassword: body.temporary_password,
        passwordHash,
        emailVerified: body.email_verified,
      }),
    );
  },
});

export const updateUser = defineOperation({
  id: 'updateUser',
  method: 'patch',
  path: '/users/{userId}',
  tag: 'users',
  summary: "Change a user's name or password, or disable them (a disabled user cannot sign in and their tokens stop introspecting as active)",
  params: userIdParams,
  body: z
    .object({
      name: z.string().max(200).nullable().optional(),
      disabled: z.boolean().optional(),
      password: z.string().max(1024).optional().describe('a new password, checked against the password policy; never returned'),
      temporary_password: z.boolean().optional().describe('with password: the user must choose a new password at their next sign-in (a password set without it is not temporary)'),
    })
    .strict(),
  response: userSchema,
  async handle({ params, body, realmId, services }) {
    const { temporary_password: temporaryPassword, ...rest } = body;
    return namingBodyFields(bodyPath, () => services.users.update(realmId, params.userId, { ...rest, temporaryPassword }));
  },
});

export const signOutUser = defineOperation({
  id: 'signOutUser',
  method: 'post',
  path: '/users/{userId}/sign-out',
  tag: 'users',
  summary: "Sign a user out everywhere: end every session and revoke every grant (refresh and access tokens, codes) of the user's applications",
  params: userIdParams,
  response: z.object({
    user_id: z.string(),
    sessions_ended: z.number().int(),
    grants_revoked: z.number().int(),
    logout_tokens: z
      .object({ delivered: z.number().int(), failed: z.number().int() })
      .describe('back-channel logout tokens posted to applications of the ended sessions that registered a backchannel_logout_uri'),
  }),
  async handle({ params, realmId, services }) {
    const user = await services.users.findById(realmId, params.userId);
    if (!user) throw notFound(`user "${params.userId}"`);
    const ended = await services.users.signOutEverywhere(realmId, user.id);
    return { user_id: user.id, sessions_ended: ended.sessions, grants_revoked: ended.grants, logout_tokens: ended.logoutTokens };
  },
});

export const listUserSessions = defineOperation({
  id: 'listUserSessions',
  method: 'get',
  path: '/users/{userId}/sessions',
  tag: 'users',
  summary: "List a user's live sessions on every domain of the realm: the browser and operating system they signed in from, when, when they were last used, and the applications signed in with each",
  params: userIdParams,
  response: z.object({
    user_id: z.string(),
    sessions: z.array(
      z.object({
        id: z.string().describe("the session's uid (not the session cookie's value)"),
        domain: z.string().nullable().describe('the host the session lives on'),
        browser: z.string().describe('from the User-Agent of the sign-in, e.g. "Firefox 133"; "Unknown browser" when not recognised'),
        os: z.string().describe('e.g. "Windows", "iOS 17"; "Unknown operating system" when not recognised'),
        signed_in_at: z.string().nullable().describe('ISO 8601'),
        last_used_at: z.string().nullable().describe('ISO 8601'),
        clients: z.array(z.object({ client_id: z.string(), name: z.string() })),
      }),
    ),
  }),
  async handle({ params, realmId, services }) {
    const user = await services.users.findById(realmId, params.userId);
    if (!user) throw notFound(`user "${params.userId}"`);
    return { user_id: user.id, sessions: (await sessionsOfUser(services, realmId, user.id)).map(toPublicSession) };
  },
});

export const createPasswordResetLink = defineOperation({
  id: 'createPasswordResetLink',
  method: 'post',
  path: '/users/{userId}/password-reset-link',
  status: 201,
  tag: 'users',
  summary:
    'Make a single-use password reset link for the user, on the issuer this request came to, to hand over yourself (no email is sent; as Auth0\'s password change tickets). It works for email.passwordResetTtlSeconds; using it ends every session of the user',
  params: userIdParams,
  response: z.object({ user_id: z.string(), url: z.string(), expires_at: z.string().describe('ISO 8601') }),
  async handle({ params, realmId, served, services }) {
    const link = await services.passwordResets.createLink(realmId, params.userId, served.issuer, 'admin-api');
    return { user_id: params.userId, url: link.url, expires_at: new Date(link.expiresAt).toISOString() };
  },
});

export const identitySchema = z.object({
  connection_id: z.string(),
  connection_name: z.string(),
  subject: z.string().describe("the upstream subject (`sub`, or the OAuth 2.0 provider's user id)"),
  email: z.string().nullable().describe('the upstream email last seen'),
  name: z.string().nullable().describe('the upstream name last seen'),
  linked_at: z.string().describe('ISO 8601'),
  last_used_at: z.string().nullable().describe('ISO 8601 of the last sign-in through it; null when never used'),
});

export const listUserIdentities = defineOperation({
  id: 'listUserIdentities',
  method: 'get',
  path: '/users/{userId}/identities',
  tag: 'users',
  summary: "The user's linked upstream identities (one per connection they can sign in through), oldest link first",
  params: userIdParams,
  response: z.object({ items: z.array(identitySchema) }),
  async handle({ params, realmId, services }) {
    const user = await services.users.findById(realmId, params.userId);
    if (!user) throw notFound(`user "${params.userId}"`);
    return { items: (await services.linking.linkedOf(realmId, user.id)).map(publicIdentity) };
  },
});

export const unlinkUserIdentity = defineOperation({
  id: 'unlinkUserIdentity',
  method: 'delete',
  path: '/users/{userId}/identities/{connectionId}',
  tag: 'users',
  summary:
    "Remove the user's link through a connection. 409 when it is the user's only way to sign in (no password, passkey, recovery codes or other link), unless force=true (the user then needs a password set or a reset link)",
  params: z.object({ userId: z.string().min(1).max(64), connectionId: z.string().min(1).max(64) }),
  query: z
    .object({ force: z.enum(['true', 'false']).default('false').describe('true: unlink even the last way in') })
    .strict(),
  status: 204,
  async handle({ params, query, realmId, services }) {
    const user = await services.users.findById(realmId, params.userId);
    if (!user) throw notFound(`user "${params.userId}"`);
    await operatorUnlink(services.linking, { realmId, userId: user.id, who: `"${user.id}"`, connectionId: params.connectionId, force: query.force === 'true', by: 'admin-api', forceHint: 'force=true' });
  },
});

export const userOperations = [listUsers, getUser, createUser, updateUser, signOutUser, listUserSessions, createPasswordResetLink, listUserIdentities, unlinkUserIdentity];

