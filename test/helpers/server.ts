import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { projectRoot } from '../../src/db/paths.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { freshDatabase, type DatabaseKind, type TestDatabase } from './databases.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer extends RunningServer {
  db: TestDatabase;
  env: Record<string, string>;
  issuer: string;
  /** Runs the real CLI (bin/latchkey.js, built by `npm test`'s pretest) against this server's database. */
  cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string; json: any }>;
}

/**
 * Fast settings for tests: minimal OWASP argon2 cost, quick change propagation, and the argon2 helper at
 * normal CPU priority: the suites share a loaded machine (the whole suite runs on two cores), where an
 * idle-priority helper took 3-12 s per verification and a password sign-in outlasted a browser step's
 * timeout (test/browser/passkeys.test.ts). test/accounts/hash-process.test.ts covers the default (idle).
 */
export const TEST_OVERRIDES = {
  log: { level: (process.env.TEST_LOG_LEVEL as any) ?? 'silent' },
  refreshIntervalSeconds: 0.2,
  passwords: { argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 }, hashPriority: 'normal' as const },
};

export function runCli(env: Record<string, string>, args: string[], stdin?: string, cwd?: string): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [join(projectRoot(), 'bin/latchkey.js'), ...args], {
      env: { ...process.env, ...env, LOG_LEVEL: 'silent' },
      cwd: cwd ?? process.cwd(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
    child.stdin!.end(stdin ?? '');
  });
}

/**
 * Starts the real server in this process on a free port with a fresh database. The default
 * realm's issuer is http://localhost:PORT; `secret` is shared with CLI runs through `env`.
 */
export async function startTestServer(options: { db?: DatabaseKind; database?: TestDatabase; overrides?: Record<string, unknown>; port?: number; secret?: string } = {}): Promise<TestServer> {
  const db = options.database ?? (await freshDatabase(options.db ?? 'sqlite'));
  const port = options.port ?? (await freePort());
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-data-'));
  const env = {
    DATABASE_URL: db.url,
    LATCHKEY_SECRET: options.secret ?? randomBytes(32).toString('base64url'),
    LATCHKEY_ISSUER: `http://localhost:${port}`,
    PORT: String(port),
  };
  const config = loadConfig({
    env,
    cwd: dataDir,
    overrides: { ...TEST_OVERRIDES, ...(options.overrides ?? {}), dataDir, server: { host: '127.0.0.1', port } },
  });
  const running = await startServer(config);
  const cliEnv = env;
  return {
    ...running,
    db,
    env: cliEnv,
    issuer: env.LATCHKEY_ISSUER,
    cli: (args, stdin) => runCli(cliEnv, args, stdin, dataDir),
    async close() {
      await running.close();
      if (!options.database) await db.drop();
    },
  };
}
