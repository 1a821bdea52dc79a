import { namingFlags, parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey client create --realm R --name N [--redirect-uri URL ...] [--post-logout-redirect-uri URL ...]
                              [--public] [--grant authorization_code|refresh_token|client_credentials|urn:ietf:params:oauth:grant-type:device_code
                                      |urn:ietf:params:oauth:grant-type:token-exchange ...]
                              [--first-party] [--auth-method client_secret_basic|client_secret_post|private_key_jwt]
                              [--id-token-alg EdDSA|RS256|ES256|PS256] [--jwks-uri URL | --jwks JSON] [--scope "openid email ..."]
                              [--admin-api]   (with --grant client_credentials: may call the admin API)
                              [--backchannel-logout-uri URL]
                                              (OpenID Connect Back-Channel Logout: a logout token is posted
                                               there when a session of this client ends by signing out)
                              [--frontchannel-logout-uri URL [--frontchannel-logout-session-required | --no-frontchannel-logout-session-required]]
                                              (OpenID Connect Front-Channel Logout: the sign-out page loads URL in a
                                               hidden iframe when a session of this client ends, with iss and sid
                                               in its query unless --no-frontchannel-logout-session-required)
                              [--native]      (a desktop or mobile app, RFC 8252: public; redirect URIs may use a
                                               private-use scheme like com.example.app:/cb, or http://127.0.0.1/cb
                                               where any port matches)
       latchkey client list --realm R
       latchkey client update --realm R --client-id ID [--name N] [--redirect-uri URL ...] [--post-logout-redirect-uri URL ...]
                              [--grant G ...] [--first-party | --third-party] [--id-token-alg ALG] [--jwks-uri URL | --jwks JSON]
                              [--scope "openid email ..."] [--admin-api | --no-admin-api]
                              [--backchannel-logout-uri URL | --no-backchannel-logout]
                              [--frontchannel-logout-uri URL | --no-frontchannel-logout]
                              [--frontchannel-logout-session-required | --no-frontchannel-logout-session-required]
                                              (a list given replaces the stored one; what is not given stays; public,
                                               native and the auth method stay: a client of another kind is a new client)
       latchkey client rotate-secret --realm R --client-id ID
                                              (a new client_secret, shown once; the old one stops working at once)
       latchkey client delete --realm R --client-id ID
                                              (revokes its grants, refresh tokens and codes; JWT access tokens it
                                               holds stay valid until they expire)`;

/** The options of what a client is created with and can be changed by (`create` and `update`). */
const SETTING_OPTIONS = {
  realm: { type: 'string' },
  name: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  grant: { type: 'string', multiple: true },
  'first-party': { type: 'boolean' },
  'id-token-alg': { type: 'string' },
  'jwks-uri': { type: 'string' },
  jwks: { type: 'string' },
  scope: { type: 'string' },
  'admin-api': { type: 'boolean' },
  'backchannel-logout-uri': { type: 'string' },
  'frontchannel-logout-uri': { type: 'string' },
  'frontchannel-logout-session-required': { type: 'boolean' },
  'no-frontchannel-logout-session-required': { type: 'boolean' },
} as const;

/** The flag that gave each field of ClientService's input (`redirectUris.1` is one of the --redirect-uri). */
const FLAGS: Record<string, string> = {
  name: '--name',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  grants: '--grant',
  firstParty: '--first-party',
  idTokenAlg: '--id-token-alg',
  jwksUri: '--jwks-uri',
  jwks: '--jwks',
  scope: '--scope',
  adminApi: '--admin-api',
  authMethod: '--auth-method',
  public: '--public',
  native: '--native',
  backchannelLogoutUri: '--backchannel-logout-uri',
  frontchannelLogoutUri: '--frontchannel-logout-uri',
  frontchannelLogoutSessionRequired: '--frontchannel-logout-session-required',
};
const flagOf = (field: string): string => FLAGS[field.split('.')[0]] ?? field;

/** --frontchannel-logout-session-required / --no-frontchannel-logout-session-required, or undefined. */
function sessionRequired(o: { 'frontchannel-logout-session-required'?: boolean; 'no-frontchannel-logout-session-required'?: boolean }): boolean | undefined {
  const on = o['frontchannel-logout-session-required'];
  const off = o['no-frontchannel-logout-session-required'];
  if (on && off) throw new UsageError(`give --frontchannel-logout-session-required or --no-frontchannel-logout-session-required, not both\n\nusage: ${usage}`);
  return on ? true : off ? false : undefined;
}

function parseJwks(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError('--jwks must be JSON, e.g. {"keys":[...]}');
  }
}

export const clientCommand: Command = {
  name: 'client',
  summary: 'register applications (OAuth clients), list, change and delete them, rotate their secrets',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(
          rest,
          {
            ...SETTING_OPTIONS,
            public: { type: 'boolean' },
            'auth-method': { type: 'string' },
            native: { type: 'boolean' },
          },
          usage,
        );
        const realmId = required(o.realm, 'realm', usage);
        const name = required(o.name, 'name', usage);
        const jwks = o.jwks ? parseJwks(o.jwks) : undefined;
        const frontchannelSession = sessionRequired(o);
        return namingFlags(flagOf, () =>
          withServices((s) =>
            s.clients.create({
              realmId,
              name,
              redirectUris: o['redirect-uri'],
              postLogoutRedirectUris: o['post-logout-redirect-uri'],
              public: o.public,
              grants: o.grant,
              firstParty: o['first-party'],
              authMethod: o['auth-method'],
              idTokenAlg: o['id-token-alg'],
              jwksUri: o['jwks-uri'],
              jwks,
              scope: o.scope,
              adminApi: o['admin-api'],
              native: o.native,
              backchannelLogoutUri: o['backchannel-logout-uri'],
              frontchannelLogoutUri: o['frontchannel-logout-uri'],
              frontchannelLogoutSessionRequired: frontchannelSession,
            }),
          ),
        );
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        return withServices(async (s) => {
          await s.realms.get(realmId);
          return { clients: await s.clients.list(realmId) };
        });
      }
      case 'update': {
        const o = parse(
          rest,
          {
            ...SETTING_OPTIONS,
            'client-id': { type: 'string' },
            'third-party': { type: 'boolean' },
            'no-admin-api': { type: 'boolean' },
            'no-backchannel-logout': { type: 'boolean' },
            'no-frontchannel-logout': { type: 'boolean' },
          },
          usage,
        );
        const realmId = required(o.realm, 'realm', usage);
        const clientId = required(o['client-id'], 'client-id', usage);
        if (o['first-party'] && o['third-party']) throw new UsageError(`give --first-party or --third-party, not both\n\nusage: ${usage}`);
        if (o['admin-api'] && o['no-admin-api']) throw new UsageError(`give --admin-api or --no-admin-api, not both\n\nusage: ${usage}`);
        if (o['backchannel-logout-uri'] !== undefined && o['no-backchannel-logout']) throw new UsageError(`give --backchannel-logout-uri or --no-backchannel-logout, not both\n\nusage: ${usage}`);
        if (o['frontchannel-logout-uri'] !== undefined && o['no-frontchannel-logout']) throw new UsageError(`give --frontchannel-logout-uri or --no-frontchannel-logout, not both\n\nusage: ${usage}`);
        const changes = {
          name: o.name,
          redirectUris: o['redirect-uri'],
          postLogoutRedirectUris: o['post-logout-redirect-uri'],
          grants: o.grant,
          firstParty: o['first-party'] ? true : o['third-party'] ? false : undefined,
          idTokenAlg: o['id-token-alg'],
          jwksUri: o['jwks-uri'],
          jwks: o.jwks === undefined ? undefined : parseJwks(o.jwks),
          scope: o.scope,
          adminApi: o['admin-api'] ? true : o['no-admin-api'] ? false : undefined,
          backchannelLogoutUri: o['no-backchannel-logout'] ? null : o['backchannel-logout-uri'],
          frontchannelLogoutUri: o['no-frontchannel-logout'] ? null : o['frontchannel-logout-uri'],
          frontchannelLogoutSessionRequired: sessionRequired(o),
        };
        if (Object.values(changes).every((v) => v === undefined)) throw new UsageError(`client update needs something to change (--name, --redirect-uri, ...)\n\nusage: ${usage}`);
        return namingFlags(flagOf, () => withServices((s) => s.clients.update(realmId, clientId, changes)));
      }
      case 'rotate-secret':
      case 'delete': {
        const o = parse(rest, { realm: { type: 'string' }, 'client-id': { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        const clientId = required(o['client-id'], 'client-id', usage);
        return withServices(async (s): Promise<Record<string, unknown>> => (sub === 'delete' ? s.clients.delete(realmId, clientId) : s.clients.rotateSecret(realmId, clientId)));
      }
      default:
        throw new UsageError(`${sub ? `unknown client command "${sub}"` : 'client needs a command'}\n\nusage: ${usage}`);
    }
  },
};
