import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { expect } from 'vitest';
import type { DatabaseKind } from './databases.js';
import { discover, PASSWORD } from './flows.js';
import { startTestServer, type TestServer } from './server.js';

/** The redirect URI of the web application `startWithModule` registers. */
export const MODULE_APP_REDIRECT = 'http://app.example.test/callback';

/** An operator's authorization module, written as `module.mjs` to a folder of its own. */
export interface ModuleFile {
  dir: string;
  path: string;
  /** The module's options (`authorization.options`). */
  options: Record<string, unknown>;
  /** Removes the folder (for `afterAll`). */
  remove(): void;
}

/** Writes `source` (an ES module exporting `createAuthorizationModule`) to a new temporary folder named after `name`. */
export function writeModule(name: string, source: string, options: Record<string, unknown> = {}): ModuleFile {
  const dir = mkdtempSync(join(tmpdir(), `latchkey-authz-${name}-`));
  const path = join(dir, 'module.mjs');
  writeFileSync(path, source);
  return { dir, path, options, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A module that refuses ID tokens (and only ID tokens), with `reason`, while its deny file exists. */
export interface IdTokenGate extends ModuleFile {
  denyFile: string;
  /** Runs `body` with ID tokens refused; allows them again however it ends. */
  denying<T>(body: () => Promise<T>): Promise<T>;
}

export function idTokenGate(name: string, reason: string): IdTokenGate {
  const module = writeModule(
    name,
    `import { existsSync } from 'node:fs';
  export function createAuthorizationModule(options) {
    return {
      name: 'id-token-gate',
      async onIssue(identity) {
        if (identity.token === 'id_token' && existsSync(options.denyFile)) return { allow: false, reason: ${JSON.stringify(reason)} };
        return { allow: true };
      },
      async check() { return false; },
    };
  }`,
  );
  const denyFile = join(module.dir, 'deny-id-tokens');
  return {
    ...module,
    options: { denyFile },
    denyFile,
    async denying(body) {
      writeFileSync(denyFile, '');
      try {
        return await body();
      } finally {
        rmSync(denyFile, { force: true });
      }
    },
  };
}

export interface ModuleServer {
  server: TestServer;
  /** The issuer of the realm the application and the user are in. */
  issuer: string;
  realm: string;
  /** The first-party web application at MODULE_APP_REDIRECT. */
  web: { id: string; secret: string };
  /** openid-client's configuration for `web`. */
  config: oidc.Configuration;
}

/**
 * The test server with `module` as its authorization module (given its options), a first-party web
 * application at MODULE_APP_REDIRECT and `email`, with PASSWORD and no name, in the default realm; or,
 * with `resources`, in a new realm "acme" (at acme.localhost) that offers those resources.
 */
export async function startWithModule(
  module: ModuleFile,
  setUp: { email: string; db?: DatabaseKind; resources?: Array<{ uri: string; scopes: string[] }> },
): Promise<ModuleServer> {
  const server = await startTestServer({ db: setUp.db, overrides: { authorization: { module: module.path, options: module.options } } });
  let realm = 'default';
  let issuer = server.issuer;
  if (setUp.resources) {
    const settings = join(module.dir, 'settings.json');
    writeFileSync(settings, JSON.stringify({ resources: setUp.resources }));
    realm = 'acme';
    issuer = `http://acme.localhost:${server.port}`;
    const created = await server.cli(['realm', 'create', '--id', realm, '--issuer', issuer, '--settings', settings]);
    expect(created.code, created.stderr).toBe(0);
  }
  const created = await server.cli(['client', 'create', '--realm', realm, '--name', 'web', '--redirect-uri', MODULE_APP_REDIRECT, '--first-party']);
  expect(created.code, created.stderr).toBe(0);
  const web = { id: created.json.client_id as string, secret: created.json.client_secret as string };
  const user = await server.cli(['user', 'create', '--realm', realm, '--email', setUp.email, '--password-stdin'], `${PASSWORD}\n`);
  expect(user.code, user.stderr).toBe(0);
  const config = await discover(issuer, web.id, { client_secret: web.secret });
  return { server, issuer, realm, web, config };
}
