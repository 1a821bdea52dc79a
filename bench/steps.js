// `npm run bench:steps`: where a sign-in flow's server CPU goes, HTTP step by HTTP step.
//
// The throughput figures of `npm run bench` say how much CPU a whole flow costs; this says which request
// of the flow spends it. Flows run one at a time (nothing else talks to the server), and the server's
// CPU time is read from /proc/<pid>/task/*/schedstat (nanoseconds, per thread) just before each request
// is sent: the difference since the previous read is charged to the previous request, including
// whatever work the server did after answering it. The argon2 helper process is counted with the
// server (its CPU goes to the request that asked for the hash). Idle timers of the server (revision
// polling, purge) fall into whichever step is running: a few microseconds per step.
//
//   BENCH_STEPS_FLOWS (default 300) flows of each kind after BENCH_STEPS_WARMUP (default 100).
//   BENCH_STEPS_KINDS=password,passkey,bare-password (default all three).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { childPids, installCleanup, stopAll } from './lib/proc.js';
import { startBare, startLatchkey } from './lib/servers.js';
import { enrolPasskey, loadSoftAuthenticator, passkeySignInOnce } from './lib/passkey.js';
import { createTarget, signInOnce } from './lib/signin.js';

const env = process.env;
const FLOWS = Number(env.BENCH_STEPS_FLOWS ?? 300);
const WARMUP = Number(env.BENCH_STEPS_WARMUP ?? 100);
const KINDS = (env.BENCH_STEPS_KINDS ?? 'password,passkey,bare-password').split(',').map((s) => s.trim());
for (const [name, n] of [['BENCH_STEPS_FLOWS', FLOWS], ['BENCH_STEPS_WARMUP', WARMUP]]) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${env[name]}"`);
}

const tmp = mkdtempSync(join(os.tmpdir(), 'latchkey-steps-'));
installCleanup(async () => rmSync(tmp, { recursive: true, force: true }));

/** On-CPU nanoseconds of every thread of `pid`, split into its main thread and the rest, plus child processes. */
function cpuNs(pid) {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ns;
    try {
      ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // the thread ended meanwhile
    }
    if (Number(tid) === pid) main += ns;
    else other += ns;
  }
  for (const child of childPids(pid)) {
    try {
      const c = cpuNs(child);
      other += c.main + c.other;
    } catch {
      // ended meanwhile
    }
  }
  return { main, other };
}

/** Runs `count` flows one after another, charging server CPU to the step whose request was sent last. */
async function measureSteps(target, pid, flow, count) {
  const steps = new Map();
  let current = null;
  let last = cpuNs(pid);
  const charge = () => {
    const now = cpuNs(pid);
    if (current) {
      const s = steps.get(current) ?? { n: 0, main: 0, other: 0 };
      s.main += now.main - last.main;
      s.other += now.other - last.other;
      steps.set(current, s);
    }
    last = now;
  };
  target.onSend = (step) => {
    charge();
    current = step;
    const s = steps.get(step) ?? { n: 0, main: 0, other: 0 };
    s.n++;
    steps.set(step, s);
  };
  for (let i = 0; i < count; i++) {
    await flow(target);
    // let the server finish what it does after its last answer before the next flow starts
    await new Promise((r) => setImmediate(r));
  }
  charge();
  target.onSend = undefined;
  return steps;
}

function report(kind, steps, flows) {
  const us = (ns) => (ns / 1000 / flows).toFixed(0).padStart(8);
  const lines = [`\n${kind}: server CPU per flow, microseconds (${flows} flows, one at a time)`];
  lines.push(`${'step'.padEnd(44)} ${'per flow'.padStart(8)} ${'loop µs'.padStart(8)} ${'other µs'.padStart(8)}`);
  let main = 0;
  let other = 0;
  for (const [step, s] of steps) {
    main += s.main;
    other += s.other;
    lines.push(`${step.padEnd(44)} ${(s.n / flows).toFixed(2).padStart(8)} ${us(s.main)} ${us(s.other)}`);
  }
  lines.push(`${'total'.padEnd(44)} ${''.padStart(8)} ${us(main)} ${us(other)}`);
  return { text: lines.join('\n'), perFlowUs: { loop: Math.round(main / 1000 / flows), other: Math.round(other / 1000 / flows) } };
}

async function main() {
  const wantLatchkey = KINDS.some((k) => k === 'password' || k === 'passkey');
  const [lk, bare] = await Promise.all([
    wantLatchkey ? startLatchkey({ tmp, passkeyUser: KINDS.includes('passkey') }) : null,
    KINDS.includes('bare-password') ? startBare({}) : null,
  ]);
  const targetOf = (s, user) =>
    createTarget({ origin: s.origin, issuer: s.issuer, clientId: s.webClient.id, clientSecret: s.webClient.secret, redirectUri: s.webClient.redirectUri, email: user.email, password: user.password, connections: 2 });
  const out = {};
  for (const kind of KINDS) {
    let target;
    let pid;
    let flow;
    if (kind === 'password') {
      target = targetOf(lk, lk.user);
      pid = lk.pid;
      flow = signInOnce;
    } else if (kind === 'bare-password') {
      target = targetOf(bare, bare.user);
      pid = bare.pid;
      flow = signInOnce;
    } else if (kind === 'passkey') {
      target = targetOf(lk, lk.passkeyUser);
      pid = lk.pid;
      const { SoftAuthenticator } = await loadSoftAuthenticator();
      const authenticator = new SoftAuthenticator({ signCount: 'zero' });
      await enrolPasskey(target, authenticator, lk.passkeyUser);
      flow = (t) => passkeySignInOnce(t, authenticator);
    } else {
      throw new Error(`BENCH_STEPS_KINDS: unknown kind "${kind}" (known: password, passkey, bare-password)`);
    }
    for (let i = 0; i < WARMUP; i++) await flow(target);
    const steps = await measureSteps(target, pid, flow, FLOWS);
    const r = report(kind, steps, FLOWS);
    out[kind] = r.perFlowUs;
    process.stdout.write(`${r.text}\n`);
    await target.pool.close();
  }
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench:steps: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  });
