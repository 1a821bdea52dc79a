import { loadConfig } from '../../config/load.js';
import { migrate } from '../../db/knex.js';
import { assertSecretOpensKeys, createServices } from '../../server/services.js';
import pino from 'pino';
import { parse, type Command } from '../context.js';

const usage = 'latchkey migrate';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'create or upgrade the database schema and the default realm',
  usage,
  async run(args) {
    parse(args, {}, usage);
    const config = loadConfig();
    const services = await createServices(config, { log: pino({ level: 'silent' }) });
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
