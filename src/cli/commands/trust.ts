import { namingFlags, parse, readPiped, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey trust add --realm R (--sample-token-stdin | --issuer URL --audience AUD)
                          [--user-id-expression EXPR] [--prefix P] [--admin USER_ID ...] [--id ID]
       latchkey trust list --realm R
       latchkey trust remove --realm R --id ID

  --sample-token-stdin   read a JWT from the issuer on stdin; its iss and aud are used (with --audience
                         to pick one when aud has several) and the expression is checked against it
  --user-id-expression   how the token's claims become the user id (default {sub}), e.g.
                         "{team}|{additional_claims.other}" or "{https://company.domain.com/claims.property}"
  --prefix               text put in front of every computed user id, e.g. "github|"
  --admin                a computed user id (prefix included) that may use the admin API`;

/** The flag that gave each field of TrustService.add's input. */
const FLAGS: Record<string, string> = { sampleToken: '--sample-token-stdin', issuer: '--issuer', audience: '--audience', userIdExpression: '--user-id-expression', prefix: '--prefix', adminUserIds: '--admin', id: '--id' };
const flagOf = (field: string): string => FLAGS[field.split('.')[0]] ?? field;

export const trustCommand: Command = {
  name: 'trust',
  summary: 'trust JWTs from external issuers (CI pipelines, other IdPs) for token exchange and the admin API',
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'add': {
        const o = parse(
          rest,
          {
            realm: { type: 'string' },
            'sample-token-stdin': { type: 'boolean' },
            issuer: { type: 'string' },
            audience: { type: 'string' },
            'user-id-expression': { type: 'string' },
            prefix: { type: 'string' },
            admin: { type: 'string', multiple: true },
            id: { type: 'string' },
          },
          usage,
        );
        const realmId = required(o.realm, 'realm', usage);
        let sampleToken: string | undefined;
        if (o['sample-token-stdin']) {
          sampleToken = (await readPiped(io, '--sample-token-stdin', 'a sample token')).trim();
          if (!sampleToken) throw new UsageError('--sample-token-stdin: no token on stdin');
        } else if (!o.issuer || !o.audience) {
          throw new UsageError(`give a sample token (--sample-token-stdin) or both --issuer and --audience\n\nusage: ${usage}`);
        }
        return namingFlags(flagOf, () =>
          withServices((s) =>
            s.trust.add({
              realmId,
              sampleToken,
              issuer: o.issuer,
              audience: o.audience,
              userIdExpression: o['user-id-expression'],
              prefix: o.prefix,
              adminUserIds: o.admin,
              id: o.id,
            }),
          ),
        );
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        return withServices(async (s) => ({ trusted_issuers: await s.trust.list(realmId) }));
      }
      case 'remove': {
        const o = parse(rest, { realm: { type: 'string' }, id: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        return withServices((s) => s.trust.remove(realmId, id));
      }
      default:
        throw new UsageError(`${sub ? `unknown trust command "${sub}"` : 'trust needs a command'}\n\nusage: ${usage}`);
    }
  },
};
