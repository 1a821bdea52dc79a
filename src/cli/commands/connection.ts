import { CONNECTION_TYPES, PRESETS } from '../../connections/settings.js';
import { namingFlags, parse, readPiped, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey connection create --realm R --id ID --client-id ID [--client-secret-stdin] [--name "Display name"]
                             (--preset ${PRESETS.join('|')} [--base-url URL] [--entra-tenant GUID] [--api-base-url URL]
                              | --type oidc --issuer URL
                              | --type oauth2 --authorization-endpoint URL --token-endpoint URL --userinfo-endpoint URL
                                --claim sub=PATH [--claim email=PATH] [--claim email_verified=PATH] [--claim name=PATH] [--claim picture=PATH])
                             [--scope S ...] [--tenant T ...]
       latchkey connection list --realm R
       latchkey connection remove --realm R --id ID
       latchkey connection disable --realm R --id ID      (and: enable; links to users are kept)
       latchkey connection set-secret --realm R --id ID --client-secret-stdin
                             (stores a new client secret: after rotating it at the upstream provider, or when
                              \`latchkey secrets check\` finds the stored one sealed with another LATCHKEY_SECRET)

  The client secret is read from standard input (never from the command line) and stored encrypted;
  no output shows it. Register the printed redirect_uris at the upstream provider.
  --base-url points a preset elsewhere (GitLab self-managed, GitHub Enterprise, a test stub).
  --tenant limits the connection to those tenants (repeat for several); without it every sign-in of the realm may use it.`;

/** The flag that gave each field of ConnectionService.create's input. */
const FLAGS: Record<string, string> = {
  id: '--id',
  name: '--name',
  preset: '--preset',
  type: '--type',
  clientId: '--client-id',
  clientSecret: '--client-secret-stdin',
  issuer: '--issuer',
  authorizationEndpoint: '--authorization-endpoint',
  tokenEndpoint: '--token-endpoint',
  userinfoEndpoint: '--userinfo-endpoint',
  scopes: '--scope',
  tenantIds: '--tenant',
  baseUrl: '--base-url',
  entraTenant: '--entra-tenant',
  apiBaseUrl: '--api-base-url',
};

/** `claims.sub` is `--claim sub=PATH`, `scopes.1` is `--scope`. */
function flagOf(field: string): string {
  const [head, key] = field.split('.');
  if (head === 'claims') return key ? `--claim ${key}=PATH` : '--claim';
  return FLAGS[head] ?? field;
}

const CLAIMS = new Set(['sub', 'email', 'email_verified', 'name', 'picture']);

function claimMapping(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const mapping: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const claim = eq > 0 ? pair.slice(0, eq) : '';
    const path = eq > 0 ? pair.slice(eq + 1) : '';
    if (!CLAIMS.has(claim) || !path) throw new UsageError(`--claim "${pair}" must be CLAIM=PATH with CLAIM one of ${[...CLAIMS].join(', ')}, e.g. --claim sub=id`);
    if (mapping[claim]) throw new UsageError(`--claim ${claim} is given twice`);
    mapping[claim] = path;
  }
  return mapping;
}

export const connectionCommand: Command = {
  name: 'connection',
  summary: 'connect upstream identity providers (OpenID Connect, OAuth 2.0, Google, GitHub, Entra ID, GitLab)',
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(
          rest,
          {
            realm: { type: 'string' },
            id: { type: 'string' },
            name: { type: 'string' },
            preset: { type: 'string' },
            type: { type: 'string' },
            issuer: { type: 'string' },
            'authorization-endpoint': { type: 'string' },
            'token-endpoint': { type: 'string' },
            'userinfo-endpoint': { type: 'string' },
            claim: { type: 'string', multiple: true },
            'client-id': { type: 'string' },
            'client-secret-stdin': { type: 'boolean' },
            scope: { type: 'string', multiple: true },
            tenant: { type: 'string', multiple: true },
            'base-url': { type: 'string' },
            'entra-tenant': { type: 'string' },
            'api-base-url': { type: 'string' },
          },
          usage,
        );
        const realmId = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        const clientId = required(o['client-id'], 'client-id', usage);
        if (!o.preset && !o.type) throw new UsageError(`give --preset (${PRESETS.join(', ')}) or --type (${CONNECTION_TYPES.join(', ')})\n\nusage: ${usage}`);
        let clientSecret: string | undefined;
        if (o['client-secret-stdin']) {
          clientSecret = (await readPiped(io, '--client-secret-stdin', 'the client secret')).replace(/\r?\n$/, '');
          if (!clientSecret) throw new UsageError('--client-secret-stdin was given but standard input was empty');
        }
        const scopes = o.scope?.flatMap((s) => s.split(' ')).filter(Boolean);
        return namingFlags(flagOf, () =>
          withServices((s) =>
            s.connections.create({
              realmId,
              id,
              name: o.name,
              preset: o.preset,
              type: o.type,
              clientId,
              clientSecret,
              issuer: o.issuer,
              authorizationEndpoint: o['authorization-endpoint'],
              tokenEndpoint: o['token-endpoint'],
              userinfoEndpoint: o['userinfo-endpoint'],
              claims: claimMapping(o.claim),
              scopes: scopes?.length ? scopes : undefined,
              tenantIds: o.tenant,
              baseUrl: o['base-url'],
              entraTenant: o['entra-tenant'],
              apiBaseUrl: o['api-base-url'],
            }),
          ),
        );
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        return withServices(async (s) => ({ connections: await s.connections.list(realmId) }));
      }
      case 'remove': {
        const o = parse(rest, { realm: { type: 'string' }, id: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        return withServices((s) => s.connections.remove(realmId, id));
      }
      case 'set-secret': {
        const o = parse(rest, { realm: { type: 'string' }, id: { type: 'string' }, 'client-secret-stdin': { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        // never from an argument: it would stay in the shell history and in the process list
        if (!o['client-secret-stdin']) throw new UsageError(`set-secret reads the client secret from standard input: add --client-secret-stdin\n\nusage: ${usage}`);
        const clientSecret = (await readPiped(io, '--client-secret-stdin', 'the client secret')).replace(/\r?\n$/, '');
        if (!clientSecret) throw new UsageError('--client-secret-stdin was given but standard input was empty');
        return namingFlags(flagOf, () => withServices((s) => s.connections.setClientSecret(realmId, id, clientSecret)));
      }
      case 'enable':
      case 'disable': {
        const o = parse(rest, { realm: { type: 'string' }, id: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        return withServices((s) => s.connections.setEnabled(realmId, id, sub === 'enable'));
      }
      default:
        throw new UsageError(`${sub ? `unknown connection command "${sub}"` : 'connection needs a command'}\n\nusage: ${usage}`);
    }
  },
};
