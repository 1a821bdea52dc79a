import { parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey client create --realm R --name N [--redirect-uri URL ...] [--post-logout-redirect-uri URL ...]
                              [--public] [--grant authorization_code|refresh_token|client_credentials|urn:ietf:params:oauth:grant-type:device_code
                                      |urn:ietf:params:oauth:grant-type:token-exchange ...]
                              [--first-party] [--auth-method client_secret_basic|client_secret_post|private_key_jwt]
                              [--id-token-alg EdDSA|RS256|ES256|PS256] [--jwks-uri URL | --jwks JSON] [--scope "openid email ..."]
                              [--admin-api]   (with --grant client_credentials: may call the admin API)
                              [--native]      (a desktop or mobile app, RFC 8252: public; redirect URIs may use a
                                               private-use scheme like com.example.app:/cb, or http://127.0.0.1/cb
                                               where any port matches)
       latchkey client list --realm R`;

export const clientCommand: Command = {
  name: 'client',
  summary: 'register applications (OAuth clients) and list them',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(
          rest,
          {
            realm: { type: 'string' },
            name: { type: 'string' },
            'redirect-uri': { type: 'string', multiple: true },
            'post-logout-redirect-uri': { type: 'string', multiple: true },
            public: { type: 'boolean' },
            grant: { type: 'string', multiple: true },
            'first-party': { type: 'boolean' },
            'auth-method': { type: 'string' },
            'id-token-alg': { type: 'string' },
            'jwks-uri': { type: 'string' },
            jwks: { type: 'string' },
            scope: { type: 'string' },
            'admin-api': { type: 'boolean' },
            native: { type: 'boolean' },
          },
          usage,
        );
        const realmId = required(o.realm, 'realm', usage);
        const name = required(o.name, 'name', usage);
        let jwks: unknown;
        if (o.jwks) {
          try {
            jwks = JSON.parse(o.jwks);
          } catch {
            throw new UsageError('--jwks must be JSON, e.g. {"keys":[...]}');
          }
        }
        return withServices((s) =>
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
          }),
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
      default:
        throw new UsageError(`${sub ? `unknown client command "${sub}"` : 'client needs a command'}\n\nusage: ${usage}`);
    }
  },
};
