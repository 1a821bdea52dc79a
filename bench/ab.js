// `node bench/ab.js <A> <B>`: which of two Latchkey builds spends less server CPU per flow.
//
// A and B are paths to a build's bin/latchkey.js (for example this checkout and a `git worktree` of an
// older commit built with `npx tsc -p tsconfig.build.json`). Both servers run for the whole comparison
// and take turns: the load goes to one while the other idles, in short windows ordered A B B A A B ...,
// so the shared machine's drifts (CPU frequency, neighbours) fall on both alike. Two runs one after the
// other on this machine differ by up to 30%; alternating windows bring A/A runs within about 3%.
//
// Reported per server: flows, server CPU per flow (every thread of the server and its argon2 helper, from
// /proc), and B/A.
//
//   BENCH_AB_KIND       passkey (default), password, client_credentials or jwks
//   BENCH_AB_WINDOWS    number of windows per server (default 12)
//   BENCH_AB_WINDOW_MS  length of a window (default 1500)
//   BENCH_AB_CONCURRENCY  flows in flight (default 4; client_credentials: connections, default 10)
//   BENCH_AB_NODE_ARGS_A, BENCH_AB_NODE_ARGS_B  node flags for one side's server (e.g. a V8 flag), with
//                         the same build given twice
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { cannon, round } from './lib/load.js';
import { cpuSeconds, installCleanup, stopAll } from './lib/proc.js';
import { startLatchkey } from './lib/servers.js';
import { enrolPasskey, loadSoftAuthenticator, passkeySignInOnce } from './lib/passkey.js';
import { createTarget, runSignIns, signInOnce } from './lib/signin.js';

const env = process.env;
const [binA, binB] = process.argv.slice(2);
if (!binA || !binB) {
  process.stderr.write('usage: node bench/ab.js <A/bin/latchkey.js> <B/bin/latchkey.js>\n');
  process.exit(2);
}
const KIND = env.BENCH_AB_KIND ?? 'passkey';
if (!['passkey', 'password', 'client_credentials', 'jwks'].includes(KIND)) throw new Error(`BENCH_AB_KIND must be passkey, password, client_credentials or jwks, got "${KIND}"`);
const positive = (name, fallback) => {
  const n = Number(env[name] ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${env[name]}"`);
  return n;
};
const WINDOWS = positive('BENCH_AB_WINDOWS', 12);
const WINDOW_MS = positive('BENCH_AB_WINDOW_MS', 1500);
const CONCURRENCY = positive('BENCH_AB_CONCURRENCY', KIND === 'client_credentials' || KIND === 'jwks' ? 10 : 4);

const tmp = mkdtempSync(join(os.tmpdir(), 'latchkey-ab-'));
installCleanup(async () => rmSync(tmp, { recursive: true, force: true }));

async function setUp(name, bin) {
  const serverNodeArgs = (env[`BENCH_AB_NODE_ARGS_${name}`] ?? '').split(/\s+/).filter(Boolean);
  const s = await startLatchkey({ tmp, bin: resolve(bin), name, passkeyUser: KIND === 'passkey', serverNodeArgs });
  let run;
  if (KIND === 'jwks') {
    run = async (ms) => {
      const r = await cannon({ origin: s.origin, host: s.host, path: '/jwks', connections: CONCURRENCY, seconds: ms / 1000 });
      return { completed: r.ok, failed: r.non2xx + r.errors };
    };
  } else if (KIND === 'client_credentials') {
    const authorization = `Basic ${Buffer.from(`${encodeURIComponent(s.ccClient.id)}:${encodeURIComponent(s.ccClient.secret)}`).toString('base64')}`;
    run = async (ms) => {
      const r = await cannon({
        origin: s.origin,
        host: s.host,
        path: '/token',
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
        connections: CONCURRENCY,
        seconds: ms / 1000,
      });
      return { completed: r.ok, failed: r.non2xx + r.errors };
    };
  } else {
    const user = KIND === 'passkey' ? s.passkeyUser : s.user;
    const target = createTarget({ origin: s.origin, issuer: s.issuer, clientId: s.webClient.id, clientSecret: s.webClient.secret, redirectUri: s.webClient.redirectUri, email: user.email, password: user.password, connections: 2 * CONCURRENCY });
    let flow = signInOnce;
    if (KIND === 'passkey') {
      const { SoftAuthenticator } = await loadSoftAuthenticator();
      const authenticator = new SoftAuthenticator({ signCount: 'zero' });
      await enrolPasskey(target, authenticator, user);
      flow = (t) => passkeySignInOnce(t, authenticator);
    }
    run = (ms) => runSignIns(target, { concurrency: CONCURRENCY, durationMs: ms, flow });
  }
  await run(2000); // warm-up
  return { name, bin, pid: s.pid, run, flows: 0, failed: 0, cpu: 0 };
}

async function main() {
  const a = await setUp('A', binA);
  const b = await setUp('B', binB);
  const opts = (name) => (env[`BENCH_AB_NODE_ARGS_${name}`] ? ` (node ${env[`BENCH_AB_NODE_ARGS_${name}`]})` : '');
  process.stdout.write(`bench:ab: ${KIND}, ${WINDOWS} windows of ${WINDOW_MS} ms per server\n  A ${resolve(binA)}${opts('A')}\n  B ${resolve(binB)}${opts('B')}\n`);
  for (let i = 0; i < WINDOWS; i++) {
    for (const s of i % 2 === 0 ? [a, b] : [b, a]) {
      const cpu0 = cpuSeconds(s.pid);
      const r = await s.run(WINDOW_MS);
      s.cpu += cpuSeconds(s.pid) - cpu0;
      s.flows += r.completed;
      s.failed += r.failed;
    }
  }
  const perFlow = (s) => (s.cpu * 1e6) / s.flows;
  for (const s of [a, b]) process.stdout.write(`  ${s.name}: ${s.flows} flows (${s.failed} failed), ${round(perFlow(s), 0)} µs server CPU per flow\n`);
  process.stdout.write(`  B/A: ${round(perFlow(b) / perFlow(a), 3)}\n`);
  if (a.failed || b.failed) process.exitCode = 1;
}

main()
  .catch((err) => {
    process.stderr.write(`bench:ab: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  });
