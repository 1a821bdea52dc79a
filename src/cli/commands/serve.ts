import { loadConfig } from '../../config/load.js';
import { parse, UsageError, type Command } from '../context.js';

const usage = 'latchkey serve [--port N]';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the identity provider (what `npm start` runs)',
  usage,
  async run(args) {
    const opts = parse(args, { port: { type: 'string' } }, usage);
    let port: number | undefined;
    if (opts.port !== undefined) {
      port = /^[0-9]{1,5}$/.test(opts.port) ? Number(opts.port) : NaN; // Number("") would be 0: a random port
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer between 0 and 65535, got "${opts.port}"`);
    }
    // through the loader, so that a default issuer follows --port as it follows PORT
    const config = loadConfig(port === undefined ? {} : { overrides: { server: { port } } });
    // loaded here so other commands do not pull in the HTTP stack
    const { startServer } = await import('../../server/start.js');
    const server = await startServer(config);
    const stop = async (signal: string) => {
      server.services.log.info({ signal }, 'shutting down');
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    return new Promise(() => {}); // runs until a signal arrives
  },
};
