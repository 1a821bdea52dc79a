// Starts the two servers under test as child processes: Latchkey (bin/latchkey.js serve, on a fresh
// SQLite file, set up with its own CLI) and the bare node-oidc-provider (bench/bare-provider.js).
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, spawnChild, waitFor } from './proc.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** BENCH_LATCHKEY_BIN benches another build (e.g. a copy with an experimental change); default: this checkout. */
export const LATCHKEY_BIN = process.env.BENCH_LATCHKEY_BIN ? resolve(process.env.BENCH_LATCHKEY_BIN) : join(ROOT, 'bin', 'latchkey.js');
const BARE = join(ROOT, 'bench', 'bare-provider.js');

export const PASSWORD = 'plum-orbit-cactus-velvet-91';
export const EMAIL = 'bench@example.test';
/** The user the passkey figure enrols a passkey for (a separate account: with a passkey, identifier-first
 * sign-in would lead bench@example.test to the passkey page instead of the password page). */
export const PASSKEY_EMAIL = 'bench-passkey@example.test';
export const REDIRECT_URI = 'http://bench.test/cb';
/** Latchkey's defaults (src/config/schema.ts), given to the bare provider too. */
export const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

/** BENCH_SERVER_NODE_ARGS: extra node flags for both servers (e.g. --trace-gc), space-separated. */
const EXTRA_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

function nodeArgs(profileDir, name, extra = EXTRA_NODE_ARGS) {
  if (!profileDir) return extra;
  mkdirSync(profileDir, { recursive: true });
  return [...extra, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`];
}

function runCli(bin, env, cwd, args, input) {
  return new Promise((resolveRun, reject) => {
    const child = execFile(process.execPath, [bin, ...args], { env, cwd, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`latchkey ${args.slice(0, 2).join(' ')} failed: ${stderr || err.message}`));
      try {
        resolveRun(JSON.parse(stdout));
      } catch {
        reject(new Error(`latchkey ${args.slice(0, 2).join(' ')} printed no JSON: ${stdout}\n${stderr}`));
      }
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

async function discoveryReady(origin, host) {
  const res = await request(`${origin}/.well-known/openid-configuration`, { headers: { host } });
  const body = await res.body.text();
  return res.statusCode === 200 && body.includes('"issuer"');
}

/**
 * Latchkey: CLI set-up (client_credentials client, first-party code-flow client, user; with `passkeyUser`
 * a second user for the passkey figure), then `serve`.
 */
export async function startLatchkey({ tmp, profileDir, configYaml, passkeyUser = false, bin = LATCHKEY_BIN, name = 'latchkey', serverNodeArgs = EXTRA_NODE_ARGS }) {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'config'), { recursive: true });
  // BENCH_LATCHKEY_YAML: extra settings for experiments (e.g. "passwords: {maxConcurrentHashes: 1}")
  if (configYaml) writeFileSync(join(dir, 'config', 'latchkey.yaml'), `${configYaml}\n`);
  const env = {
    ...process.env,
    PORT: String(port),
    DATABASE_URL: `sqlite:${join(dir, 'latchkey.db')}`,
    LATCHKEY_SECRET: randomBytes(32).toString('base64url'),
    LATCHKEY_ISSUER: issuer,
    LOG_LEVEL: 'warn',
  };
  delete env.LATCHKEY_CONFIG;
  const cc = await runCli(bin, env, dir, ['client', 'create', '--realm', 'default', '--name', 'bench', '--grant', 'client_credentials']);
  const web = await runCli(bin, env, dir, ['client', 'create', '--realm', 'default', '--name', 'bench-web', '--redirect-uri', REDIRECT_URI, '--first-party']);
  const user = await runCli(bin, env, dir, ['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
  const pkUser = passkeyUser ? await runCli(bin, env, dir, ['user', 'create', '--realm', 'default', '--email', PASSKEY_EMAIL, '--password-stdin'], `${PASSWORD}\n`) : null;
  const realm = (await runCli(bin, env, dir, ['realm', 'list'])).realms.find((r) => r.id === 'default');

  const entry = spawnChild(name, process.execPath, [...nodeArgs(profileDir, name, serverNodeArgs), bin, 'serve'], { env, cwd: dir });
  const origin = `http://127.0.0.1:${port}`;
  const host = `localhost:${port}`;
  await waitFor(entry, () => discoveryReady(origin, host));
  return {
    name: 'latchkey',
    entry,
    pid: entry.child.pid,
    origin,
    host,
    issuer,
    audience: realm.settings.defaultAudience,
    ccClient: { id: cc.client_id, secret: cc.client_secret },
    webClient: { id: web.client_id, secret: web.client_secret, redirectUri: REDIRECT_URI },
    user: { id: user.id, email: EMAIL, password: PASSWORD },
    passkeyUser: pkUser && { id: pkUser.id, email: PASSKEY_EMAIL, password: PASSWORD },
  };
}

/**
 * node-oidc-provider as published, for the bare provider: Latchkey's `node_modules` carries the fixes in
 * `patches/` (applied by patch-package at install), and the baseline is the library without them. A copy
 * of the installed package goes to bench/node_modules/oidc-provider (ignored by git) with those patches
 * reversed; bench/bare-provider.js resolves `oidc-provider` there first, and the package's own
 * dependencies from the project's node_modules. Made again whenever the installed version or the
 * patches change. Returns what the bare provider runs.
 */
function pristineOidcProvider() {
  const installed = join(ROOT, 'node_modules', 'oidc-provider');
  const copy = join(ROOT, 'bench', 'node_modules', 'oidc-provider');
  const version = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version;
  const patchDir = join(ROOT, 'patches');
  const patches = existsSync(patchDir) ? readdirSync(patchDir).filter((f) => f.startsWith('oidc-provider+') && f.endsWith('.patch')).sort() : [];
  const stamp = JSON.stringify({ version, patches: patches.map((f) => [f, createHash('sha256').update(readFileSync(join(patchDir, f))).digest('hex')]) });
  const marker = join(copy, '.latchkey-pristine');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== stamp) {
    rmSync(copy, { recursive: true, force: true });
    mkdirSync(dirname(copy), { recursive: true });
    cpSync(installed, copy, { recursive: true });
    for (const file of patches) {
      try {
        // the patches name files as a/node_modules/oidc-provider/...: -p1 from bench/ lands on the copy
        execFileSync('patch', ['-R', '-p1', '-s', '-f', '-d', join(ROOT, 'bench'), '-i', join(patchDir, file)], { stdio: 'pipe' });
      } catch (err) {
        rmSync(copy, { recursive: true, force: true });
        throw new Error(`cannot undo ${file} on a copy of oidc-provider ${version} for the bare provider: ${err.stderr?.toString() || err.message}`);
      }
    }
    writeFileSync(marker, stamp);
  }
  return { version, copy, reversedPatches: patches };
}

/** The bare node-oidc-provider with the same kind of clients and user (fresh random credentials). */
export async function startBare({ profileDir }) {
  const oidcProvider = pristineOidcProvider();
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const settings = {
    port,
    issuer,
    audience: `${issuer}/api`,
    cookieKey: randomBytes(32).toString('base64url'),
    ccClient: { id: randomBytes(16).toString('base64url'), secret: randomBytes(32).toString('base64url') },
    webClient: { id: randomBytes(16).toString('base64url'), secret: randomBytes(32).toString('base64url'), redirectUri: REDIRECT_URI },
    user: { id: randomUUID(), email: EMAIL, password: PASSWORD },
    argon2: ARGON2,
  };
  const env = { ...process.env, BENCH_BARE: JSON.stringify(settings) };
  const entry = spawnChild('bare', process.execPath, [...nodeArgs(profileDir, 'bare'), BARE], { env, cwd: ROOT });
  const origin = `http://127.0.0.1:${port}`;
  const host = `localhost:${port}`;
  await waitFor(entry, () => discoveryReady(origin, host));
  return { name: 'bare', entry, pid: entry.child.pid, origin, host, oidcProvider, ...settings };
}
