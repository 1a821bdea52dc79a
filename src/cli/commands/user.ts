import { readFile } from 'node:fs/promises';
import { parseUserImport } from '../../accounts/user-import.js';
import type { UserSort } from '../../accounts/user-service.js';
import { sessionsOfUser, toPublicSession } from '../../accounts/device-activity.js';
import { notFound } from '../../errors.js';
import { operatorUnlink, publicIdentity } from '../../connections/account-linking.js';
import { recordSecurityEvent } from '../../mfa/security-events.js';
import type { Services } from '../../server/services.js';
import { namingFlags, parse, readPiped, required, UsageError, withServices, type Command, type CommandIo } from '../context.js';

const usage = `latchkey user create --realm R --email E [--name N] [--password-stdin [--temporary]]
       latchkey user set-password --realm R --email E --password-stdin [--temporary]
                 (--temporary: the user must choose a new password at their next sign-in)
       latchkey user set-email --realm R --email E --new-email N [--unverified]   (confirmed unless --unverified)
       latchkey user sign-out --realm R --email E     (ends every session, revokes every grant and its tokens;
                                                  applications with a back-channel logout URI are sent logout tokens)
       latchkey user sessions --realm R --email E    (the user's live sessions: id, domain, browser, os,
                                                  signed_in_at, last_used_at and the applications signed in)
       latchkey user reset-link --realm R --email E [--issuer URL]   (a single-use password reset link to hand over)
       latchkey user disable --realm R --email E
       latchkey user enable --realm R --email E
       latchkey user list --realm R [--tenant-id T] [--email E] [--limit N] [--cursor C] [--sort created_at|-created_at|email|-email]
       latchkey user import --realm R --file PATH|- [--dry-run]
                 (users from another identity provider, JSON Lines or one JSON array, each
                  {"email", "name", "email_verified", "disabled", "password_hash"}; password_hash is an
                  argon2 PHC string or a bcrypt hash, replaced by argon2id at the user's first sign-in.
                  The whole file is checked first: one bad entry imports nothing. Existing addresses are
                  skipped. Progress goes to stderr; --file - reads standard input)
       latchkey user identities --realm R --email E   (the upstream identities linked to the user, as a JSON list)
       latchkey user unlink --realm R --email E --connection ID [--force]
                 (removes the user's link through that connection; refused when it is the user's only
                  way to sign in (no password, passkey, recovery codes or other link) unless --force)
       latchkey user export --realm R [--include-password-hashes]
                 (every user, oldest first, as one JSON document that user import reads back; password
                  hashes only when asked: they are secrets, keep the output as such)`;

/** The password piped to --password-stdin, without one trailing newline. */
async function passwordFromStdin(io: CommandIo): Promise<string> {
  const password = (await readPiped(io, '--password-stdin', 'the password')).replace(/\r?\n$/, '');
  if (!password) throw new UsageError('--password-stdin was given but standard input was empty');
  return password;
}

/** Progress of an import on stderr: at most once a second, and when it is done (only for imports of 100 users or more). */
function importProgress(io: CommandIo, total: number, verb: string): (done: number) => void {
  if (total < 100) return () => {};
  let last = Date.now();
  return (done) => {
    const now = Date.now();
    if (done < total && now - last < 1000) return;
    last = now;
    io.stderr(`latchkey user import: ${verb} ${done} of ${total} users (${Math.floor((done / total) * 100)}%)\n`);
  };
}

/** The user with this address in the realm, or a not-found error naming both. */
async function userByEmail(s: Services, realmId: string, email: string) {
  const user = await s.users.findByEmail(realmId, email);
  if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
  return user;
}

export const userCommand: Command = {
  name: 'user',
  summary: 'create, import, export, list, disable and enable users; set a password or email address or make a reset link; list a user’s sessions; sign a user out everywhere; list and unlink their linked identities',
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, 'password-stdin': { type: 'boolean' }, temporary: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        if (o.temporary && !o['password-stdin']) throw new UsageError(`--temporary goes with --password-stdin (the temporary password)\n\nusage: ${usage}`);
        const password = o['password-stdin'] ? await passwordFromStdin(io) : undefined;
        return namingFlags(
          (field) => ({ password: '--password-stdin', temporaryPassword: '--temporary' })[field] ?? `--${field}`, // name
          () => withServices((s) => s.users.create({ realmId, email, name: o.name, password, temporaryPassword: o.temporary })),
        );
      }
      case 'set-password': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' }, 'password-stdin': { type: 'boolean' }, temporary: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        // never from an argument: it would stay in the shell history and in the process list
        if (!o['password-stdin']) throw new UsageError(`set-password reads the new password from standard input: add --password-stdin\n\nusage: ${usage}`);
        const password = await passwordFromStdin(io);
        return withServices((s) => s.users.setPassword(realmId, email, password, { temporary: o.temporary }));
      }
      case 'set-email': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' }, 'new-email': { type: 'string' }, unverified: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        const newEmail = required(o['new-email'], 'new-email', usage);
        return withServices(async (s) => {
          const changed = await s.users.setEmail(realmId, email, newEmail, { verified: !o.unverified });
          await recordSecurityEvent(s.db, { realmId, userId: changed.id, type: 'email_changed', detail: { from: email, to: changed.email, by: 'cli' } });
          return changed;
        });
      }
      case 'sign-out': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        return withServices(async (s) => {
          const user = await userByEmail(s, realmId, email);
          const ended = await s.users.signOutEverywhere(realmId, user.id);
          return { realm: realmId, email: user.email, user_id: user.id, sessions_ended: ended.sessions, grants_revoked: ended.grants, logout_tokens: ended.logoutTokens };
        });
      }
      case 'sessions': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        return withServices(async (s) => {
          const user = await s.users.findByEmail(realmId, email);
          if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
          const sessions = await sessionsOfUser(s, realmId, user.id);
          return { realm: realmId, email: user.email, user_id: user.id, sessions: sessions.map(toPublicSession) };
        });
      }
      case 'reset-link': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' }, issuer: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        return withServices(async (s) => {
          const realm = await s.realms.get(realmId);
          if (!realm) throw notFound(`realm "${realmId}"`);
          const issuer = o.issuer === undefined ? realm.issuers[0] : realm.issuers.find((i) => i === o.issuer?.replace(/\/+$/, ''));
          if (!issuer) {
            throw new UsageError(
              o.issuer === undefined ? `realm "${realmId}" has no issuer: add one with latchkey realm update` : `--issuer ${o.issuer} is not an issuer of realm "${realmId}" (its issuers: ${realm.issuers.join(', ') || 'none'})`,
            );
          }
          const user = await userByEmail(s, realmId, email);
          const link = await s.passwordResets.createLink(realmId, user.id, issuer, 'cli');
          return { realm: realmId, email: user.email, user_id: user.id, url: link.url, expires_at: new Date(link.expiresAt).toISOString() };
        });
      }
      case 'disable':
      case 'enable': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        return withServices((s) => s.users.setDisabled(realmId, email, sub === 'disable'));
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' }, 'tenant-id': { type: 'string' }, email: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, sort: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const limit = o.limit === undefined ? undefined : /^[0-9]+$/.test(o.limit) ? Number(o.limit) : NaN;
        if (Number.isNaN(limit)) throw new UsageError(`--limit must be a whole number (got "${o.limit}")`);
        return namingFlags(
          (field) => `--${field}`, // limit, sort
          () => withServices((s) => s.users.list(realmId, { tenantId: o['tenant-id'], email: o.email, limit, cursor: o.cursor, sort: o.sort as UserSort | undefined })),
        );
      }
      case 'import': {
        const o = parse(rest, { realm: { type: 'string' }, file: { type: 'string' }, 'dry-run': { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const file = required(o.file, 'file', usage);
        let text: string;
        if (file === '-') text = await readPiped(io, '--file -', 'the users to import');
        else {
          try {
            text = await readFile(file, 'utf8');
          } catch (err) {
            throw new UsageError(`--file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
          }
        }
        const users = parseUserImport(text);
        return withServices((s) => s.users.importUsers(realmId, users, { dryRun: o['dry-run'], onProgress: importProgress(io, users.length, o['dry-run'] ? 'checked' : 'imported') }));
      }
      case 'identities': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        return withServices(async (s) => {
          const user = await userByEmail(s, realmId, email);
          return (await s.linking.linkedOf(realmId, user.id)).map(publicIdentity);
        });
      }
      case 'unlink': {
        const o = parse(rest, { realm: { type: 'string' }, email: { type: 'string' }, connection: { type: 'string' }, force: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const email = required(o.email, 'email', usage);
        const connectionId = required(o.connection, 'connection', usage);
        return withServices(async (s) => {
          const user = await userByEmail(s, realmId, email);
          await operatorUnlink(s.linking, { realmId, userId: user.id, who: user.email, connectionId, force: o.force, by: 'cli', forceHint: '--force' });
          return { realm: realmId, email: user.email, user_id: user.id, unlinked: connectionId, forced: Boolean(o.force) };
        });
      }
      case 'export': {
        const o = parse(rest, { realm: { type: 'string' }, 'include-password-hashes': { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        let last = Date.now();
        return withServices((s) =>
          s.users.exportUsers(realmId, {
            includePasswordHashes: o['include-password-hashes'],
            onProgress: (done) => {
              if (Date.now() - last < 1000) return;
              last = Date.now();
              io.stderr(`latchkey user export: ${done} users so far\n`);
            },
          }),
        );
      }
      default:
        throw new UsageError(`${sub ? `unknown user command "${sub}"` : 'user needs a command'}\n\nusage: ${usage}`);
    }
  },
};
