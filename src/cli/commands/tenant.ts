import { namingFlags, parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey tenant create --realm R --id ID --name N [--domain D ...] [--connection C ...] [--sso-enforced] [--logo-url URL] [--primary-color #hex]
       latchkey tenant update --realm R --id ID [--name N] [--domain D ...] [--connection C ...] [--sso-enforced | --no-sso-enforced] [--logo-url URL] [--primary-color #hex]
       latchkey tenant show --realm R --id ID
       latchkey tenant list --realm R
       latchkey tenant delete --realm R --id ID
       latchkey tenant add-member --realm R --tenant T (--email E | --user-id U)
       latchkey tenant remove-member --realm R --tenant T (--email E | --user-id U)`;

/** The options of `create`; `update` also takes --no-sso-enforced (a new tenant is not enforced unless asked). */
const shape = {
  realm: { type: 'string' },
  id: { type: 'string' },
  name: { type: 'string' },
  domain: { type: 'string', multiple: true },
  connection: { type: 'string', multiple: true },
  'sso-enforced': { type: 'boolean' },
  'logo-url': { type: 'string' },
  'primary-color': { type: 'string' },
} as const;
const updateShape = { ...shape, 'no-sso-enforced': { type: 'boolean' } } as const;

/** The flag that gave each field of TenantService's input. */
const FLAGS: Record<string, string> = {
  id: '--id',
  displayName: '--name',
  domains: '--domain',
  connections: '--connection',
  'branding.logoUrl': '--logo-url',
  'branding.primaryColor': '--primary-color',
};
const flagOf = (field: string): string => FLAGS[field] ?? field;

export const tenantCommand: Command = {
  name: 'tenant',
  summary: 'create, update, list and delete tenants; add and remove members',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(rest, shape, usage);
        const realm = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        const name = required(o.name, 'name', usage);
        const branding = { ...(o['logo-url'] ? { logoUrl: o['logo-url'] } : {}), ...(o['primary-color'] ? { primaryColor: o['primary-color'] } : {}) };
        return namingFlags(flagOf, () =>
          withServices((s) => s.tenants.create(realm, { id, displayName: name, domains: o.domain, connections: o.connection, ssoEnforced: Boolean(o['sso-enforced']), branding })),
        );
      }
      case 'update': {
        const o = parse(rest, updateShape, usage);
        const realm = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        if (o['sso-enforced'] && o['no-sso-enforced']) throw new UsageError('--sso-enforced and --no-sso-enforced cannot both be given');
        return namingFlags(flagOf, () =>
          withServices(async (s) => {
            const current = await s.tenants.get(realm, id);
            const branding = o['logo-url'] || o['primary-color'] ? { ...current.branding, ...(o['logo-url'] ? { logoUrl: o['logo-url'] } : {}), ...(o['primary-color'] ? { primaryColor: o['primary-color'] } : {}) } : undefined;
            return s.tenants.update(realm, id, {
              displayName: o.name,
              domains: o.domain,
              connections: o.connection,
              ssoEnforced: o['sso-enforced'] ? true : o['no-sso-enforced'] ? false : undefined,
              branding,
            });
          }),
        );
      }
      case 'show':
      case 'delete': {
        const o = parse(rest, { realm: { type: 'string' }, id: { type: 'string' } }, usage);
        const realm = required(o.realm, 'realm', usage);
        const id = required(o.id, 'id', usage);
        return withServices<unknown>((s) => (sub === 'show' ? s.tenants.get(realm, id) : s.tenants.delete(realm, id)));
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        const realm = required(o.realm, 'realm', usage);
        return withServices(async (s) => {
          await s.realms.get(realm);
          return { tenants: await s.tenants.list(realm) };
        });
      }
      case 'add-member':
      case 'remove-member': {
        const o = parse(rest, { realm: { type: 'string' }, tenant: { type: 'string' }, email: { type: 'string' }, 'user-id': { type: 'string' } }, usage);
        const realm = required(o.realm, 'realm', usage);
        const tenant = required(o.tenant, 'tenant', usage);
        if (!o.email === !o['user-id']) throw new UsageError(`give exactly one of --email and --user-id\n\nusage: ${usage}`);
        const who = { email: o.email, userId: o['user-id'] };
        return withServices<unknown>((s) => (sub === 'add-member' ? s.tenants.addMember(realm, tenant, who) : s.tenants.removeMember(realm, tenant, who)));
      }
      default:
        throw new UsageError(`${sub ? `unknown tenant command "${sub}"` : 'tenant needs a command'}\n\nusage: ${usage}`);
    }
  },
};
