import { notFound } from '../../errors.js';
import { checkSealedSecrets } from '../../secrets/check.js';
import { parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey secrets check [--realm R]
                            (every value sealed with LATCHKEY_SECRET - signing keys, TOTP secrets, upstream
                             connection client secrets - of realm R, or of every realm: per kind, how many open
                             with this secret, and the ids of those that do not (sealed with another secret), each
                             with the command that fixes it. Never prints a secret. "ok" is false when any does
                             not open; progress goes to stderr)
       latchkey secrets reset-totp --realm R (--user-id ID | --email E) --yes
                            (deletes that user's TOTP factor when this secret cannot open it - no code can match
                             it - so they set up their authenticator app again, and records a
                             "totp_reset_unreadable" security event. Until they do, the realm's mfa policy
                             decides: with "required" their next sign-in asks them to set up a second factor;
                             with "optional" they sign in with their password alone unless they have a passkey.
                             A factor that opens is never reset)

  Signing keys are repaired with \`latchkey keys repair\`; a connection's client secret is stored again with
  \`latchkey connection set-secret\`.`;

export const secretsCommand: Command = {
  name: 'secrets',
  summary: 'check that every stored secret opens with LATCHKEY_SECRET; reset TOTP factors sealed with another secret',
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'check': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        if (o.realm === '') throw new UsageError(`--realm needs a realm id\n\nusage: ${usage}`);
        return withServices(
          async (s) => {
            const result = await checkSealedSecrets(s, { realmId: o.realm, progress: (text) => io.stderr(`latchkey secrets: ${text}`) });
            if (!result.ok) {
              const n = result.signing_keys.unreadable.length + result.totp_factors.unreadable.length + result.connection_secrets.unreadable.length;
              io.stderr(`latchkey secrets: warning: ${n} stored secret${n === 1 ? '' : 's'} cannot be opened with this LATCHKEY_SECRET (sealed with another); each is listed with the command that fixes it\n`);
            }
            return result;
          },
          { allowUnreadableKeys: true },
        );
      }
      case 'reset-totp': {
        const o = parse(rest, { realm: { type: 'string' }, 'user-id': { type: 'string' }, email: { type: 'string' }, yes: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        if ((o['user-id'] === undefined) === (o.email === undefined)) throw new UsageError(`give the user by --user-id or by --email (one of them)\n\nusage: ${usage}`);
        return withServices(
          async (s) => {
            await s.realms.get(realmId);
            const user = o['user-id'] !== undefined ? await s.users.findById(realmId, o['user-id']) : await s.users.findByEmail(realmId, o.email!);
            if (!user) throw notFound(`user ${o['user-id'] ?? o.email} in realm "${realmId}"`);
            if (!o.yes) {
              throw new UsageError(
                `secrets reset-totp deletes the TOTP factor of ${user.email} (if this LATCHKEY_SECRET cannot open it); they set up their authenticator app again, and until then sign in as the realm's mfa policy allows. Add --yes to go ahead.\n\nusage: ${usage}`,
              );
            }
            const reset = await s.totp.resetUnreadable(realmId, user.id, 'cli');
            const policy = (await s.realms.get(realmId)).settings.mfa;
            io.stderr(
              `latchkey secrets: the TOTP factor of ${user.email} is deleted; ${policy === 'required' ? 'their next sign-in asks them to set up a second factor' : `with the realm's mfa policy "${policy}" they sign in with their password alone (unless they have a passkey) until they set one up again: tell them`}\n`,
            );
            return { realm: realmId, user_id: user.id, email: user.email, totp_reset: true, was_confirmed: reset.confirmed, security_event: 'totp_reset_unreadable' };
          },
          { allowUnreadableKeys: true },
        );
      }
      default:
        throw new UsageError(`${sub ? `unknown secrets command "${sub}"` : 'secrets needs a command'}\n\nusage: ${usage}`);
    }
  },
};
