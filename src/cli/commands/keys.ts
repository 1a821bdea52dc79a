import { parse, required, UsageError, withServices, type Command } from '../context.js';

const usage = `latchkey keys rotate --realm R [--activate-after SECONDS]
                            (a new EdDSA, RSA and P-256 key, published at once, signing after SECONDS:
                             keys.activateAfterSeconds, 60 by default; the old keys stay published until
                             the tokens they signed have expired)
       latchkey keys list --realm R
                            (each key's state - pending, active, retired, expired - with its times, and
                             sealed_key "unreadable" for a key this LATCHKEY_SECRET cannot open)
       latchkey keys repair --realm R --yes
                            (deletes the keys whose private key is unreadable - sealed with another
                             LATCHKEY_SECRET - and publishes a new key set that signs at once; tokens the
                             deleted keys signed no longer verify, so it asks for --yes)`;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** The longest --activate-after: a key set that signs only after a year is a mistake, not a plan. */
const MAX_ACTIVATE_AFTER = 365 * 24 * 3600;

export const keysCommand: Command = {
  name: 'keys',
  summary: "rotate and list a realm's signing keys; repair a realm whose keys were sealed with another secret",
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'rotate': {
        const o = parse(rest, { realm: { type: 'string' }, 'activate-after': { type: 'string' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        // decimal digits only: Number() reads "" and " " as 0 (keys signing at once), "0x10" as 16, "1e3" as 1000
        const given = o['activate-after'];
        if (given !== undefined && !/^[0-9]+$/.test(given)) throw new UsageError(`--activate-after must be a whole number of seconds (0 or more), got "${given}"`);
        // a time past the storage's and Date's range was a database error, or keys written and then no answer
        if (given !== undefined && Number(given) > MAX_ACTIVATE_AFTER) throw new UsageError(`--activate-after must be at most ${MAX_ACTIVATE_AFTER} seconds (a year), got ${given}`);
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
        return withServices(
          async (s) => {
            await s.realms.get(realmId);
            const keys = await s.keys.inspect(realmId);
            const unreadable = keys.filter((k) => !k.readable && k.state !== 'expired');
            if (unreadable.length) {
              io.stderr(
                `latchkey keys: warning: realm "${realmId}" has ${unreadable.length} signing key${unreadable.length > 1 ? 's' : ''} this LATCHKEY_SECRET cannot open (${unreadable.map((k) => k.key.kid).join(', ')}): ` +
                  `sealed with another secret, they keep the realm from signing. \`latchkey keys repair --realm ${realmId} --yes\` discards them and publishes new keys.\n`,
              );
            }
            return {
              realm: realmId,
              keys: keys.map((st) => ({
                kid: st.key.kid,
                family: st.key.family,
                algs: st.key.family === 'RSA' ? ['RS256', 'PS256'] : [st.key.family],
                state: st.state,
                sealed_key: st.readable ? 'readable' : 'unreadable',
                created_at: iso(st.key.createdAt),
                activate_at: iso(st.key.activateAt),
                retired_at: iso(st.retiredAt),
                remove_at: iso(st.removeAt),
              })),
            };
          },
          { allowUnreadableKeys: true },
        );
      }
      case 'repair': {
        const o = parse(rest, { realm: { type: 'string' }, yes: { type: 'boolean' } }, usage);
        const realmId = required(o.realm, 'realm', usage);
        return withServices(
          async (s) => {
            await s.realms.get(realmId);
            if (!o.yes) {
              const unreadable = (await s.keys.inspect(realmId)).filter((k) => !k.readable);
              if (unreadable.length) {
                throw new UsageError(
                  `keys repair deletes ${unreadable.map((k) => `${k.key.kid} (${k.state})`).join(', ')} of realm "${realmId}" and publishes new keys that sign at once; ` +
                    `tokens the deleted keys signed will no longer verify. Add --yes to go ahead.\n\nusage: ${usage}`,
                );
              }
            }
            const repair = await s.keys.discardUnreadable(realmId);
            return {
              realm: realmId,
              discarded: repair.discarded,
              new_kids: repair.kids,
              activate_at: iso(repair.activateAt),
            };
          },
          { allowUnreadableKeys: true },
        );
      }
      default:
        throw new UsageError(`${sub ? `unknown keys command "${sub}"` : 'keys needs a command'}\n\nusage: ${usage}`);
    }
  },
};
