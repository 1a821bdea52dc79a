import { parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey keys rotate --realm R [--activate-after SECONDS]
       latchkey keys list --realm R`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'rotate and list a realm\'s signing keys',
  usage,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'rotate': {
        const o = parse(rest, { realm: { type: 'string' }, 'activate-after': { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        // decimal digits only: Number() reads "" and " " as 0 (keys signing at once), "0x10" as 16, "1e3" as 1000
        const given = o['activate-after'];
        if (given !== undefined && !/^[0-9]+$/.test(given)) throw new UsageError(`--activate-after must be a whole number of seconds (0 or more), got "${given}"`);
        return withServices(async (s) => {
          const delay = given === undefined ? s.config.keys.activateAfterSeconds : Number(given);
          await s.realms.get(realmId);
          const { kids, activateAt } = await s.keys.rotate(realmId, delay);
          return { realm: realmId, new_kids: kids, activate_at: new Date(activateAt).toISOString() };
        });
      }
      case 'list': {
        const o = parse(rest, { realm: { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        return withServices(async (s) => {
          await s.realms.get(realmId);
          const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
          return {
            realm: realmId,
            keys: (await s.keys.statuses(realmId)).map((st) => ({
              kid: st.key.kid,
              family: st.key.family,
              algs: st.key.family === 'RSA' ? ['RS256', 'PS256'] : [st.key.family],
              state: st.state,
              created_at: iso(st.key.createdAt),
              activate_at: iso(st.key.activateAt),
              retired_at: iso(st.retiredAt),
              remove_at: iso(st.removeAt),
            })),
          };
        });
      }
      default:
        throw new UsageError(`${sub ? `unknown keys command "${sub}"` : 'keys needs a command'}\n\nusage: ${usage}`);
    }
  },
};
