import { readFileSync } from 'node:fs';
import { namingFlags, parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey realm create --id ID --issuer URL [--issuer URL ...] [--name "Display name"] [--settings FILE.json]
       latchkey realm add-issuer --realm ID --issuer URL
       latchkey realm list`;

/** The flag of a field of the realm service's input (`issuers.1` is the second --issuer). */
const flagOf = (field: string): string => {
  const head = field.split('.')[0]!;
  return head === 'displayName' ? '--name' : head === 'issuers' ? '--issuer' : `--${head}`;
};

export const realmCommand: Command = {
  name: 'realm',
  summary: 'create realms, add issuer domains, list realms',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'create': {
        const o = parse(rest, { id: { type: 'string' }, issuer: { type: 'string', multiple: true }, name: { type: 'string' }, settings: { type: 'string' } }, usage);
        const id = required(o.id, 'id', usage);
        if (!o.issuer?.length) throw new UsageError(`missing required option --issuer\n\nusage: ${usage}`);
        let settings: unknown;
        if (o.settings) {
          try {
            settings = JSON.parse(readFileSync(o.settings, 'utf8'));
          } catch (err) {
            throw new UsageError(`--settings ${o.settings}: ${(err as Error).message}`);
          }
        }
        return namingFlags(flagOf, () => withServices((s) => s.realms.create({ id, displayName: o.name, issuers: o.issuer!, settings })));
      }
      case 'add-issuer': {
        const o = parse(rest, { realm: { type: 'string' }, issuer: { type: 'string' } }, usage);
        const realm = required(o.realm, 'realm', usage);
        const issuer = required(o.issuer, 'issuer', usage);
        return namingFlags(flagOf, () => withServices((s) => s.realms.addIssuer(realm, issuer)));
      }
      case 'list': {
        parse(rest, {}, usage);
        return withServices(async (s) => ({ realms: await s.realms.list() }));
      }
      default:
        throw new UsageError(`${sub ? `unknown realm command "${sub}"` : 'realm needs a command'}\n\nusage: ${usage}`);
    }
  },
};
