import { loadConfig } from '../../config/load.js';
import { migrate } from '../../db/knex.js';
import { assertSecretOpensKeys } from '../../server/services.js';
import { commandServices, parse, type Command } from '../context.js';

const usage = 'latchkey migrate';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'create or upgrade the database schema and the default realm',
  usage,
  async run(args) {
    parse(args, {}, usage);
    const config = loadConfig();
    const services = await commandServices(config);
    try {
      const applied = await migrate(services.db);
      const realm = await services.realms.ensureDefault(config.issuer);
      await assertSecretOpensKeys(services);
      return { applied, default_realm: { id: realm.id, issuers: realm.issuers } };
    } finally {
      await services.close();
    }
  },
};
