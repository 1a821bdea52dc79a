import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LatchkeyConfig } from '../config/schema.js';
import { LatchkeyError } from '../errors.js';
import { migrate } from '../db/knex.js';
import { WalCheckpointer } from '../db/wal-checkpointer.js';
import { DurableResponse } from '../db/write-batch.js';
import { ProviderCache } from '../oidc/providers.js';
import { RealmRegistry } from '../realms/registry.js';
import { purgeExpired } from './purge.js';
import { createApp } from './app.js';
import { createFastPath } from './fast-path.js';
import { assertSecretOpensKeys, createServices, type Services } from './services.js';

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  server: Server;
  close(): Promise<void>;
}

/** Migrates, makes sure the default realm exists, and serves every realm until closed. */
export async function startServer(config: LatchkeyConfig, options: { services?: Services } = {}): Promise<RunningServer> {
  const services = options.services ?? (await createServices(config));
  const { log } = services;
  if (config.source.secretFrom === 'generated' || config.source.secretFrom === 'file') {
    log.warn(
      { file: `${config.dataDir}/dev-secret` },
      'LATCHKEY_SECRET is not set: using a generated development secret stored under the data folder. Set LATCHKEY_SECRET (32+ random characters) in production, and the same value on every instance.',
    );
  }
  await migrate(services.db);
  await services.realms.ensureDefault(config.issuer);
  try {
    await assertSecretOpensKeys(services);
  } catch (err) {
    if (err instanceof LatchkeyError && (err.code === 'secret_mismatch' || err.code === 'unreadable_keys')) await services.close();
    throw err;
  }
  // SQLite: WAL checkpoints in a worker thread instead of inside some request's commit
  const checkpointer = await WalCheckpointer.start(services.db, { onError: (err) => log.warn({ err }, 'WAL checkpoint worker failed; SQLite checkpoints on the event loop instead') });

  const registry = new RealmRegistry(services.db, config.refreshIntervalSeconds * 1000);
  await registry.start();
  const providers = new ProviderCache(registry, services.realms, services.keys, {
    db: services.db,
    config,
    clients: services.clients,
    users: services.users,
    authz: services.authz,
    tenants: services.tenants,
    cookieKeys: services.cookieKeys,
    log: services.log,
    trust: services.trust,
    throttle: services.throttle,
    events: services.events,
  });
  const app = createApp({ services, registry, providers });
  const koa = app.callback();
  const fastPath = createFastPath({ registry, providers, log, trustProxy: config.server.trustProxy });
  // responses wait for the SQLite writes made while they were prepared (src/db/write-batch.ts)
  const server = createServer({ ServerResponse: DurableResponse }, (req, res) => {
    if (!fastPath(req, res)) void koa(req, res);
  });
  server.keepAliveTimeout = 65_000;

  const purge = setInterval(async () => {
    try {
      const removed = await purgeExpired(services);
      if (Object.values(removed).some(Boolean)) log.info({ removed }, 'purged expired artefacts');
    } catch (err) {
      log.warn({ err }, 'purge of expired artefacts failed');
    }
  }, config.database.purgeIntervalSeconds * 1000);
  purge.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://localhost:${port}`;
  log.info({ port, issuer: config.issuer, database: config.database.url.startsWith('sqlite:') ? 'sqlite' : 'postgres' }, 'latchkey is listening');

  let closed = false;
  return {
    url,
    port,
    services,
    server,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(purge);
      registry.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await checkpointer?.stop();
      await services.close();
    },
  };
}
