// `npm run bench`: Latchkey against a bare node-oidc-provider, same machine, same run, over loopback.
// See bench/README.md for what each figure means and for the settings (BENCH_* environment variables).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { cannon, paced, ratioInterval, round, summarize } from './lib/load.js';
import { pacedOnThread } from './lib/paced-thread.js';
import { cpuSeconds, CLK_TCK, installCleanup, mainThreadCpuSeconds, rssMiB, stopAll, withBackground } from './lib/proc.js';
import { ROOT, ARGON2, LATCHKEY_BIN, startBare, startLatchkey } from './lib/servers.js';
import { enrolPasskey, idTokenClaims, loadSoftAuthenticator, passkeySignInOnce } from './lib/passkey.js';
import { createTarget, runSignIns, signInOnce } from './lib/signin.js';

// ---------------------------------------------------------------------------------------------- settings

const env = process.env;
const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const num = (name, fallback) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
};
const FIGURES = ['client_credentials', 'jwks', 'discovery', 'signin', 'passkey', 'burst'];
/**
 * Figures compared with the bare provider in alternating windows (Latchkey, bare, bare, Latchkey, ...;
 * `ratioWindows` windows each) instead of one 10 s run after the other: this shared machine's speed
 * drifts by 10-30% within a minute, which a back-to-back comparison reads as a difference between servers.
 */
const INTERLEAVED = new Set(['client_credentials', 'jwks', 'discovery']);
/** Figures only Latchkey has (the bare provider has no passkeys): measured on Latchkey alone. */
const LATCHKEY_ONLY = new Set(['passkey']);
const settings = {
  quick,
  secondsPerFigure: num('BENCH_SECONDS', quick ? 2 : 10),
  warmupSeconds: num('BENCH_WARMUP_SECONDS', quick ? 1 : 3),
  connections: num('BENCH_CONNECTIONS', 10),
  signInConcurrency: num('BENCH_SIGNIN_CONCURRENCY', 4),
  burstClientCredentialsRate: num('BENCH_CC_RATE', 100),
  burstGenerator: env.BENCH_BURST_GENERATOR || 'paced',
  burstWindows: num('BENCH_BURST_WINDOWS', quick ? 2 : 5),
  ratioWindows: num('BENCH_RATIO_WINDOWS', quick ? 2 : 5),
  figures: (env.BENCH_FIGURES ? env.BENCH_FIGURES.split(',').map((s) => s.trim()).filter(Boolean) : FIGURES),
  profile: env.BENCH_PROFILE === '1' || env.BENCH_PROFILE === 'true',
  latchkeyConfigYaml: env.BENCH_LATCHKEY_YAML || null,
  noisyBackgroundCores: 0.15,
  argon2: ARGON2,
  order: 'each figure: latchkey, then bare (the other server idles)',
  clientCredentialsRequest: 'POST /token grant_type=client_credentials, client_secret_basic, no resource (default audience)',
  passkeyAuthenticator: 'dist/testing/soft-authenticator.js, one ES256 credential, signCount "zero" (as synced passkeys), shared by all workers',
};
if (!['paced', 'paced-inline', 'autocannon'].includes(settings.burstGenerator)) throw new Error(`BENCH_BURST_GENERATOR must be "paced", "paced-inline" or "autocannon", got "${settings.burstGenerator}"`);
for (const f of settings.figures) if (!FIGURES.includes(f)) throw new Error(`BENCH_FIGURES: unknown figure "${f}" (known: ${FIGURES.join(', ')})`);

const TARGETS = {
  client_credentials: { kind: 'ratio-min', value: 0.8, text: '>= 0.8x bare' },
  jwks: { kind: 'ratio-min', value: 1.5, text: '>= 1.5x bare' },
  discovery: { kind: 'none', text: '(no target)' },
  signin: { kind: 'per-cpu-min', value: 20, text: '>= 20 flows per server CPU-s' },
  passkey: { kind: 'vs-signin-min', value: 10, text: '>= 10x password sign-in' },
  burst: { kind: 'p99-ratio-max', value: 2, text: 'burst p99 <= 2x idle p99' },
};

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/:/g, '-');
const resultsDir = join(ROOT, 'bench', 'results');
const profileDir = settings.profile ? join(resultsDir, 'profiles', stamp) : null;
const tmp = mkdtempSync(join(os.tmpdir(), 'latchkey-bench-'));
const keepTmp = env.BENCH_KEEP_TMP === '1';
const removeTmp = () => {
  if (!keepTmp) rmSync(tmp, { recursive: true, force: true });
};
installCleanup(async () => removeTmp());

const log = (msg) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------------------------------------- helpers

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function ccRequest(s) {
  return {
    path: '/token',
    method: 'POST',
    headers: { authorization: basic(s.ccClient.id, s.ccClient.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  };
}

const decodeJwt = (jwt) => {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
};

async function getJson(s, path, init = {}) {
  const res = await request(`${s.origin}${path}`, { ...init, headers: { host: s.host, ...init.headers } });
  const text = await res.body.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, json, text };
}

/** Checks that both servers do what the benchmark assumes before anything is measured. */
async function sanity(s, target) {
  const problems = [];
  const disco = await getJson(s, '/.well-known/openid-configuration');
  if (disco.status !== 200 || disco.json?.issuer !== s.issuer) problems.push(`discovery: ${disco.status} issuer ${disco.json?.issuer}`);
  const jwks = await getJson(s, '/jwks');
  const keys = jwks.json?.keys ?? [];
  if (jwks.status !== 200) problems.push(`jwks: status ${jwks.status}`);
  // The order across families is not checked: Latchkey sorts by key state only (see the README).
  const has = (kty, crv) => keys.some((k) => k.kty === kty && (!crv || k.crv === crv));
  if (!has('OKP', 'Ed25519') || !has('RSA') || !has('EC', 'P-256')) problems.push(`jwks: expected Ed25519, RSA and P-256 keys, got ${keys.map((k) => k.kty).join(', ')}`);
  if (keys.some((k) => 'd' in k)) problems.push('jwks: a private key is published!');
  const cc = ccRequest(s);
  const tok = await getJson(s, cc.path, { method: 'POST', headers: cc.headers, body: cc.body });
  let ccToken = null;
  if (tok.status !== 200 || !tok.json?.access_token) problems.push(`client_credentials: ${tok.status} ${tok.text.slice(0, 200)}`);
  else {
    try {
      ccToken = decodeJwt(tok.json.access_token);
      if (ccToken.header.alg !== 'EdDSA') problems.push(`client_credentials: access token alg ${ccToken.header.alg}, expected EdDSA`);
      if (ccToken.payload.aud !== s.audience) problems.push(`client_credentials: aud ${ccToken.payload.aud}, expected ${s.audience}`);
    } catch {
      problems.push('client_credentials: the access token is not a JWT');
    }
  }
  let idToken = null;
  try {
    const tokens = await signInOnce(target);
    idToken = decodeJwt(tokens.id_token);
    if (idToken.header.alg !== 'EdDSA') problems.push(`sign-in: ID token alg ${idToken.header.alg}, expected EdDSA`);
  } catch (err) {
    problems.push(`sign-in: ${err.message}`);
  }
  return {
    ok: problems.length === 0,
    problems,
    jwksKeys: keys.map((k) => `${k.kty}${k.crv ? `/${k.crv}` : ''}`),
    accessToken: ccToken && { alg: ccToken.header.alg, aud: ccToken.payload.aud, bytes: tok.json.access_token.length },
    idTokenAlg: idToken?.header.alg ?? null,
  };
}

async function signInFigure(s, target, seconds, flow) {
  const cpu0 = cpuSeconds(s.pid);
  const r = await runSignIns(target, { concurrency: settings.signInConcurrency, durationMs: seconds * 1000, flow });
  const cpu = cpuSeconds(s.pid) - cpu0;
  return {
    seconds: round(r.elapsedSeconds, 3),
    flows: r.completed,
    failed: r.failed,
    httpRequestsPerFlow: round(r.requestsPerFlow, 1),
    errorsByStep: r.errorsByStep,
    errorSamples: r.errorSamples,
    rate: round(r.completed / r.elapsedSeconds, 2),
    flowLatencyMs: summarize(r.latencies),
    serverCpuSeconds: round(cpu, 2),
    serverCpuUtilisation: round(cpu / r.elapsedSeconds, 2),
    ratePerCpuSecond: cpu > 0 ? round(r.completed / cpu, 2) : null,
  };
}

const nowMs = () => performance.timeOrigin + performance.now();

/**
 * The burst figure with the paced generator (the default): client_credentials at a steady rate on a
 * thread of its own (lib/paced-thread.js) for the whole figure, while the sign-in workers alternate:
 * `burstWindows` idle windows and as many burst windows of seconds/burstWindows each, interleaved
 * (idle, burst, idle, burst, ...). Each request counts for the window it was sent in; requests sent
 * while the last flows of a burst finish, or in the short pause after it, count for neither. The shared
 * machine's slow drifts (other tenants, CPU frequency) then touch idle and burst alike, instead of
 * falling on one of two consecutive 10-second runs.
 */
async function burstInWindows(s, target, seconds) {
  const rate = settings.burstClientCredentialsRate;
  const windows = settings.burstWindows;
  const windowMs = (seconds * 1000) / windows;
  const settleMs = 1000;
  const base = { origin: s.origin, host: s.host, ...ccRequest(s), rate, keepSamples: true, pid: s.pid };
  // long enough for every window and the flows' tails; stopped when the last window ends
  const generator = pacedOnThread({ ...base, seconds: 2 * seconds + windows * 5 });
  await sleep(settleMs);
  const idleWindows = [];
  const burstWindows = [];
  const flows = { completed: 0, failed: 0, latencies: [], errorSamples: [], elapsed: 0 };
  const cpu0 = cpuSeconds(s.pid);
  const loop0 = nowMs();
  for (let i = 0; i < windows; i++) {
    const i0 = nowMs();
    await sleep(windowMs);
    idleWindows.push([i0, nowMs()]);
    const b0 = nowMs();
    const r = await runSignIns(target, { concurrency: settings.signInConcurrency, durationMs: windowMs });
    burstWindows.push([b0, b0 + windowMs]);
    flows.completed += r.completed;
    flows.failed += r.failed;
    flows.latencies.push(...r.latencies);
    flows.errorSamples.push(...r.errorSamples.slice(0, 5 - flows.errorSamples.length));
    flows.elapsed += r.elapsedSeconds;
    await sleep(settleMs);
  }
  const cpu = cpuSeconds(s.pid) - cpu0;
  const loopSeconds = (nowMs() - loop0) / 1000;
  generator.stop();
  const all = await generator.result;
  const within = (list) => {
    const out = [];
    for (let k = 0; k < all.samples.due.length; k++) {
      const due = all.samples.due[k];
      if (list.some(([a, b]) => due >= a && due < b)) out.push(all.samples.latency[k]);
    }
    return out;
  };
  const idleLat = within(idleWindows);
  const burstLat = within(burstWindows);
  const part = (lat, wins) => ({
    requests: lat.length,
    ok: lat.length,
    non2xx: all.non2xx,
    errors: all.errors,
    seconds: round(wins.reduce((t, [a, b]) => t + (b - a), 0) / 1000, 2),
    latencyMs: summarize(lat),
  });
  const idle = { ...part(idleLat, idleWindows), generator: all.generator, sendLagMs: all.sendLagMs, statusCodes: all.statusCodes };
  const during = part(burstLat, burstWindows);
  return {
    windows: { count: windows, seconds: round(windowMs / 1000, 2), order: 'idle, burst, idle, burst, ...', settleMs },
    idle,
    burst: {
      clientCredentials: during,
      signIns: {
        flows: flows.completed,
        failed: flows.failed,
        rate: round(flows.completed / flows.elapsed, 2),
        flowLatencyMs: summarize(flows.latencies),
        errorSamples: flows.errorSamples,
      },
      serverCpuSeconds: round(cpu, 2),
      serverCpuUtilisation: round(cpu / loopSeconds, 2),
    },
    p99Ratio: idle.latencyMs.p99 && during.latencyMs.p99 ? round(during.latencyMs.p99 / idle.latencyMs.p99, 2) : null,
    p99RatioInterval95: ratioInterval(idleLat, burstLat, 99),
    p50Ratio: idle.latencyMs.p50 && during.latencyMs.p50 ? round(during.latencyMs.p50 / idle.latencyMs.p50, 2) : null,
  };
}

async function burstFigure(s, target, seconds) {
  const base = { origin: s.origin, host: s.host, ...ccRequest(s), seconds };
  const rate = settings.burstClientCredentialsRate;
  // autocannon's overallRate is bursty (see lib/load.js); it is kept as an option for comparison
  // paced-inline: idle, then burst, with the generator on this thread next to the sign-in workers;
  // autocannon: the same with autocannon's overallRate (bursty, see lib/load.js)
  if (settings.burstGenerator === 'paced') return burstInWindows(s, target, seconds);
  const generate = (opts) =>
    settings.burstGenerator === 'paced-inline'
        ? paced({ ...opts, rate })
        : cannon({ ...opts, overallRate: rate, connections: 4 });
  const idle = await generate({ ...base, pid: s.pid });
  await sleep(500);
  const cpu0 = cpuSeconds(s.pid);
  const [during, signins] = await Promise.all([generate(base), runSignIns(target, { concurrency: settings.signInConcurrency, durationMs: seconds * 1000 })]);
  const cpu = cpuSeconds(s.pid) - cpu0;
  const ratio = idle.latencyMs.p99 && during.latencyMs.p99 ? round(during.latencyMs.p99 / idle.latencyMs.p99, 2) : null;
  return {
    idle,
    burst: {
      clientCredentials: during,
      signIns: {
        flows: signins.completed,
        failed: signins.failed,
        rate: round(signins.completed / signins.elapsedSeconds, 2),
        flowLatencyMs: summarize(signins.latencies),
        errorSamples: signins.errorSamples,
      },
      serverCpuSeconds: round(cpu, 2),
      serverCpuUtilisation: round(cpu / Math.max(signins.elapsedSeconds, during.seconds), 2),
    },
    p99Ratio: ratio,
    p50Ratio: idle.latencyMs.p50 && during.latencyMs.p50 ? round(during.latencyMs.p50 / idle.latencyMs.p50, 2) : null,
  };
}

async function measure(figure, s, target, seconds, keepLatencies = false) {
  switch (figure) {
    case 'client_credentials':
      return cannon({ origin: s.origin, host: s.host, ...ccRequest(s), connections: settings.connections, seconds, pid: s.pid, keepLatencies });
    case 'jwks':
      return cannon({ origin: s.origin, host: s.host, path: '/jwks', connections: settings.connections, seconds, pid: s.pid, keepLatencies });
    case 'discovery':
      return cannon({ origin: s.origin, host: s.host, path: '/.well-known/openid-configuration', connections: settings.connections, seconds, pid: s.pid, keepLatencies });
    case 'signin':
      return signInFigure(s, target, seconds);
    case 'passkey':
      if (!s.passkey) throw new Error(`${s.name} has no enrolled passkey`);
      return signInFigure(s, target, seconds, (t) => passkeySignInOnce(t, s.passkey.authenticator));
    case 'burst':
      return burstFigure(s, target, seconds);
  }
  throw new Error(`unknown figure ${figure}`);
}

/**
 * One INTERLEAVED figure on both servers: `ratioWindows` windows each, in the order Latchkey, bare, bare,
 * Latchkey, ..., every window seconds / ratioWindows long. Each server's windows add up to one result of
 * the same shape as a single run (counts, rate, latency percentiles over all its requests, server CPU
 * split between the event-loop thread and the others).
 */
async function interleavedFigure(figure, servers, targets, seconds) {
  const windows = settings.ratioWindows;
  const windowSeconds = seconds / windows;
  const names = Object.keys(servers);
  const sum = Object.fromEntries(names.map((n) => [n, { requests: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0, seconds: 0, cpu: 0, main: 0, generator: 0, latencies: [], statusCodes: {} }]));
  for (let i = 0; i < windows; i++) {
    for (const name of i % 2 === 0 ? names : [...names].reverse()) {
      const s = servers[name];
      const cpu0 = cpuSeconds(s.pid);
      const main0 = mainThreadCpuSeconds(s.pid);
      const r = await measure(figure, s, targets[name], windowSeconds, true);
      const t = sum[name];
      t.cpu += cpuSeconds(s.pid) - cpu0;
      t.main += mainThreadCpuSeconds(s.pid) - main0;
      for (const k of ['requests', 'ok', 'non2xx', 'errors', 'timeouts', 'seconds']) t[k] += r[k];
      t.generator += r.loadGeneratorCpuSeconds;
      for (const v of r.latencies) t.latencies.push(v);
      for (const [code, n] of Object.entries(r.statusCodes)) t.statusCodes[code] = (t.statusCodes[code] ?? 0) + n;
      await sleep(200);
    }
  }
  const out = {};
  for (const name of names) {
    const t = sum[name];
    out[name] = {
      windows: { count: windows, seconds: round(windowSeconds, 2), order: `${names.join(', ')}, then reversed, ...` },
      seconds: round(t.seconds, 3),
      requests: t.requests,
      ok: t.ok,
      non2xx: t.non2xx,
      errors: t.errors,
      timeouts: t.timeouts,
      statusCodes: t.statusCodes,
      rate: round(t.ok / t.seconds, 1),
      latencyMs: summarize(t.latencies),
      serverCpuSeconds: round(t.cpu, 2),
      serverCpuUtilisation: round(t.cpu / t.seconds, 2),
      ratePerCpuSecond: t.cpu > 0 ? round(t.ok / t.cpu, 1) : null,
      loadGeneratorCpuSeconds: round(t.generator, 2),
      serverCpuSplit: {
        eventLoopThreadSeconds: round(t.main, 2),
        otherThreadsSeconds: round(Math.max(0, t.cpu - t.main), 2),
        eventLoopMsPerUnit: t.ok ? round((1000 * t.main) / t.ok, 3) : null,
        otherThreadsMsPerUnit: t.ok ? round((1000 * Math.max(0, t.cpu - t.main)) / t.ok, 3) : null,
      },
    };
  }
  return out;
}

/**
 * The passkey / password ratio measured in interleaved windows on Latchkey: `ratioWindows` pairs of
 * windows, password then passkey, then passkey then password, ..., each seconds / ratioWindows long,
 * with the server's CPU (argon2 helper included) read around each window. The two separate figures run
 * some 30 s apart (with the bare provider's password figure between them), and this shared machine's
 * speed drifts by 10% and more over such a span; side by side in short windows, both kinds see the same
 * machine.
 */
async function interleavedRatio(s, target, seconds) {
  const windows = settings.ratioWindows;
  const windowMs = (seconds * 1000) / windows;
  const flows = { password: signInOnce, passkey: (t) => passkeySignInOnce(t, s.passkey.authenticator) };
  const sum = {};
  for (const kind of Object.keys(flows)) sum[kind] = { flows: 0, failed: 0, seconds: 0, cpu: 0 };
  for (let i = 0; i < windows; i++) {
    for (const kind of i % 2 === 0 ? ['password', 'passkey'] : ['passkey', 'password']) {
      const cpu0 = cpuSeconds(s.pid);
      const r = await runSignIns(target, { concurrency: settings.signInConcurrency, durationMs: windowMs, flow: flows[kind] });
      sum[kind].cpu += cpuSeconds(s.pid) - cpu0;
      sum[kind].flows += r.completed;
      sum[kind].failed += r.failed;
      sum[kind].seconds += r.elapsedSeconds;
      await sleep(200);
    }
  }
  const figure = (k) => ({
    flows: sum[k].flows,
    failed: sum[k].failed,
    rate: round(sum[k].flows / sum[k].seconds, 2),
    serverCpuSeconds: round(sum[k].cpu, 2),
    ratePerCpuSecond: sum[k].cpu > 0 ? round(sum[k].flows / sum[k].cpu, 2) : null,
  });
  const password = figure('password');
  const passkey = figure('passkey');
  return {
    windows: { pairs: windows, seconds: round(windowMs / 1000, 2), order: 'password, passkey, then passkey, password, ...' },
    password,
    passkey,
    ratioRaw: password.rate ? round(passkey.rate / password.rate, 2) : null,
    ratioPerCpu: password.ratePerCpuSecond && passkey.ratePerCpuSecond ? round(passkey.ratePerCpuSecond / password.ratePerCpuSecond, 2) : null,
  };
}

/**
 * Passkey sign-in against Latchkey's own password sign-in (same run): raw and per server CPU-second.
 * The verdict uses the interleaved measurement when both figures ran (it runs as soon as both are in):
 * like the ratios against the bare provider, a ratio of two figures measured 30 s apart reads the
 * machine's drift as a difference, and the separate passkey figure follows a 3 s warm-up, while V8 is
 * still compiling the flow's code for some 15 s of load (--trace-opt). The ratio of the two separate
 * figures is reported next to it (see bench/README.md).
 */
function passkeyVerdict(pk, pw, interleaved) {
  const t = TARGETS.passkey;
  const out = { target: t.text, comparedWith: 'Latchkey password sign-in (figure signin), same run; the bare provider has no passkeys' };
  out.passkeyRate = pk?.rate ?? null;
  out.passkeyPerCpu = pk?.ratePerCpuSecond ?? null;
  out.passwordRate = pw?.rate ?? null;
  out.passwordPerCpu = pw?.ratePerCpuSecond ?? null;
  out.separateRatioRaw = pk?.rate && pw?.rate ? round(pk.rate / pw.rate, 2) : null;
  out.separateRatioPerCpu = pk?.ratePerCpuSecond && pw?.ratePerCpuSecond ? round(pk.ratePerCpuSecond / pw.ratePerCpuSecond, 2) : null;
  out.interleavedRatioRaw = interleaved?.ratioRaw ?? null;
  out.interleavedRatioPerCpu = interleaved?.ratioPerCpu ?? null;
  out.measuredBy = interleaved ? 'interleaved windows' : 'separate figures';
  out.ratioRaw = interleaved ? out.interleavedRatioRaw : out.separateRatioRaw;
  out.ratioPerCpu = interleaved ? out.interleavedRatioPerCpu : out.separateRatioPerCpu;
  out.valid = Boolean(pk) && !pk.failed && !(pw && pw.failed) && !(interleaved && (interleaved.password.failed || interleaved.passkey.failed));
  out.resultRaw = out.ratioRaw === null ? 'N/A' : out.ratioRaw >= t.value ? 'PASS' : 'MISS';
  out.resultPerCpu = out.ratioPerCpu === null ? 'N/A' : out.ratioPerCpu >= t.value ? 'PASS' : 'MISS';
  if (!out.valid) out.result = 'INVALID';
  else if (!pw) out.result = 'N/A';
  else out.result = out.resultRaw === 'PASS' && out.resultPerCpu === 'PASS' ? 'PASS' : out.resultRaw === 'MISS' && out.resultPerCpu === 'MISS' ? 'MISS' : 'MIXED';
  if (!pw) out.note = 'run the signin figure too (BENCH_FIGURES=signin,passkey) for the ratio';
  return out;
}

function verdict(figure, lk, bare) {
  const t = TARGETS[figure];
  const out = { target: t.text };
  if (figure === 'burst') {
    out.value = lk.p99Ratio;
    out.interval95 = lk.p99RatioInterval95 ?? null;
    const bad = (r) => r && (r.idle.non2xx || r.idle.errors || r.burst.clientCredentials.non2xx || r.burst.clientCredentials.errors || r.burst.signIns.failed);
    out.valid = !bad(lk) && !bad(bare);
    out.result = !out.valid ? 'INVALID' : lk.p99Ratio === null ? 'N/A' : lk.p99Ratio <= t.value ? 'PASS' : 'MISS';
    out.bareValue = bare?.p99Ratio ?? null;
    return out;
  }
  out.ratioRaw = bare?.rate ? round(lk.rate / bare.rate, 2) : null;
  out.ratioPerCpu = bare?.ratePerCpuSecond && lk.ratePerCpuSecond ? round(lk.ratePerCpuSecond / bare.ratePerCpuSecond, 2) : null;
  const valid = !(lk.non2xx || lk.errors || lk.timeouts || lk.failed) && !(bare && (bare.non2xx || bare.errors || bare.timeouts || bare.failed));
  out.valid = valid;
  if (t.kind === 'ratio-min') {
    out.resultRaw = out.ratioRaw === null ? 'N/A' : out.ratioRaw >= t.value ? 'PASS' : 'MISS';
    out.resultPerCpu = out.ratioPerCpu === null ? 'N/A' : out.ratioPerCpu >= t.value ? 'PASS' : 'MISS';
    out.result = !valid ? 'INVALID' : out.resultRaw === 'PASS' && out.resultPerCpu === 'PASS' ? 'PASS' : out.resultRaw === 'MISS' && out.resultPerCpu === 'MISS' ? 'MISS' : 'MIXED';
  } else if (t.kind === 'per-cpu-min') {
    out.value = lk.ratePerCpuSecond;
    out.result = !valid ? 'INVALID' : lk.ratePerCpuSecond >= t.value ? 'PASS' : 'MISS';
  } else {
    out.result = '-';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- output

const pad = (v, w, left = false) => {
  const s = v === null || v === undefined ? '-' : String(v);
  return left ? s.padEnd(w) : s.padStart(w);
};
const fx = (v) => (v === null || v === undefined ? '-' : `${v}x`);

function table(results) {
  const lines = [];
  const m = results.machine;
  lines.push('');
  lines.push(`Latchkey vs bare node-oidc-provider ${results.servers.bare.oidcProviderVersion} - ${m.cpus} x ${m.cpuModel}, Node ${m.node}, ${results.settings.secondsPerFigure}s per figure (warm-up ${results.settings.warmupSeconds}s)`);
  lines.push('');
  const head = `${pad('figure', 20, true)} ${pad('server', 9, true)} ${pad('rate/s', 9)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('non2xx', 7)} ${pad('srv CPU', 8)} ${pad('per CPU-s', 10)} ${pad('loop ms/op', 11)} ${pad('pool ms/op', 11)} ${pad('bg', 5)}`;
  lines.push(head);
  lines.push('-'.repeat(head.length));
  const labels = { client_credentials: 'client_credentials', jwks: 'JWKS', discovery: 'discovery', signin: 'password sign-in', passkey: 'passkey sign-in' };
  for (const figure of ['client_credentials', 'jwks', 'discovery', 'signin', 'passkey']) {
    const f = results.figures[figure];
    if (!f) continue;
    for (const name of ['latchkey', 'bare']) {
      const r = f[name];
      if (!r) continue;
      const lat = r.latencyMs ?? r.flowLatencyMs;
      const bad = r.non2xx ?? r.failed ?? 0;
      lines.push(
        `${pad(name === 'latchkey' ? labels[figure] : '', 20, true)} ${pad(name, 9, true)} ${pad(r.rate, 9)} ${pad(lat.p50, 8)} ${pad(lat.p99, 8)} ${pad(bad + (r.errors ? `+${r.errors}e` : ''), 7)} ${pad(r.serverCpuUtilisation === null ? null : `${Math.round(r.serverCpuUtilisation * 100)}%`, 8)} ${pad(r.ratePerCpuSecond, 10)} ${pad(r.serverCpuSplit?.eventLoopMsPerUnit, 11)} ${pad(r.serverCpuSplit?.otherThreadsMsPerUnit, 11)} ${pad(r.backgroundCores, 5)}`,
      );
    }
  }
  lines.push('  (loop / pool ms/op: server CPU per request or flow on the event-loop thread / on all other threads, e.g. argon2)');
  lines.push(`  (bg: CPU cores used by other processes meanwhile; above ${results.settings.noisyBackgroundCores} the figure is noisy)`);
  if (results.figures.signin) {
    const f = results.figures.signin;
    lines.push(`  (password sign-in: rate = completed flows/s, latencies = whole flow, non2xx column = failed flows; HTTP requests per flow: latchkey ${f.latchkey?.httpRequestsPerFlow ?? '-'}, bare ${f.bare?.httpRequestsPerFlow ?? '-'})`);
  }
  if (results.figures.passkey) {
    const f = results.figures.passkey;
    lines.push(`  (passkey sign-in: options, software-authenticator assertion, verification, code exchange; same columns as password sign-in; ${f.latchkey?.httpRequestsPerFlow ?? '-'} HTTP requests per flow; Latchkey only: the bare provider has no passkeys)`);
  }
  const b = results.figures.burst;
  if (b) {
    lines.push('');
    lines.push(`client_credentials at ${results.settings.burstClientCredentialsRate} req/s (${results.settings.burstGenerator}), idle vs during ${results.settings.signInConcurrency} concurrent password sign-ins`);
    const bh = `${pad('server', 9, true)} ${pad('idle p50', 9)} ${pad('idle p99', 9)} ${pad('burst p50', 10)} ${pad('burst p99', 10)} ${pad('p99 ratio', 10)} ${pad('95% interval', 13)} ${pad('sign-ins/s', 11)} ${pad('non2xx', 7)} ${pad('srv CPU', 8)} ${pad('bg', 5)}`;
    lines.push(bh);
    lines.push('-'.repeat(bh.length));
    for (const name of ['latchkey', 'bare']) {
      const r = b[name];
      if (!r) continue;
      lines.push(
        `${pad(name, 9, true)} ${pad(r.idle.latencyMs.p50, 9)} ${pad(r.idle.latencyMs.p99, 9)} ${pad(r.burst.clientCredentials.latencyMs.p50, 10)} ${pad(r.burst.clientCredentials.latencyMs.p99, 10)} ${pad(fx(r.p99Ratio), 10)} ${pad(r.p99RatioInterval95 ? `${fx(r.p99RatioInterval95[0])}-${fx(r.p99RatioInterval95[1])}` : '-', 13)} ${pad(r.burst.signIns.rate, 11)} ${pad(r.idle.non2xx + r.burst.clientCredentials.non2xx, 7)} ${pad(`${Math.round(r.burst.serverCpuUtilisation * 100)}%`, 8)} ${pad(r.backgroundCores, 5)}`,
      );
    }
  }
  lines.push('');
  lines.push('Targets (Latchkey / bare)');
  const th = `${pad('figure', 20, true)} ${pad('raw', 8)} ${pad('per CPU', 8)} ${pad('target', 30, true)} result`;
  lines.push(th);
  lines.push('-'.repeat(th.length + 12));
  for (const figure of FIGURES) {
    const v = results.verdicts[figure];
    if (!v) continue;
    const label = labels[figure] ?? 'cc p99 under burst';
    const noisy = v.noisy ? `  [noisy: other processes used up to ${v.maxBackgroundCores} cores]` : '';
    if (figure === 'passkey') {
      const il = results.figures.passkeyInterleaved;
      const how = il
        ? `interleaved windows: passkey ${il.passkey.rate}/s, ${il.passkey.ratePerCpuSecond} per CPU-s vs password ${il.password.rate}/s, ${il.password.ratePerCpuSecond} per CPU-s; separate figures: ${fx(v.separateRatioRaw)} raw, ${fx(v.separateRatioPerCpu)} per CPU`
        : `passkey ${v.passkeyRate ?? '-'}/s, ${v.passkeyPerCpu ?? '-'} per CPU-s vs password ${v.passwordRate ?? '-'}/s, ${v.passwordPerCpu ?? '-'} per CPU-s`;
      lines.push(`${pad('passkey / password', 20, true)} ${pad(fx(v.ratioRaw), 8)} ${pad(fx(v.ratioPerCpu), 8)} ${pad(v.target, 30, true)} ${v.result}  (raw ${v.resultRaw}, per CPU ${v.resultPerCpu}; ${how}; no bare comparison)${v.note ? `  [${v.note}]` : ''}${noisy}`);
    } else if (figure === 'burst') {
      const spread = v.interval95 ? `95% bootstrap interval ${fx(v.interval95[0])}-${fx(v.interval95[1])}; ` : '';
      lines.push(`${pad(label, 20, true)} ${pad(fx(v.value), 8)} ${pad('', 8)} ${pad(v.target, 30, true)} ${v.result}  (${spread}bare: ${fx(v.bareValue)})${noisy}`);
    } else if (figure === 'signin') {
      lines.push(`${pad(label, 20, true)} ${pad(fx(v.ratioRaw), 8)} ${pad(fx(v.ratioPerCpu), 8)} ${pad(v.target, 30, true)} ${v.result}  (Latchkey: ${v.value} flows per CPU-s)${noisy}`);
    } else {
      const detail = TARGETS[figure].kind === 'ratio-min' ? `  (raw ${v.resultRaw}, per CPU ${v.resultPerCpu})` : '';
      lines.push(`${pad(label, 20, true)} ${pad(fx(v.ratioRaw), 8)} ${pad(fx(v.ratioPerCpu), 8)} ${pad(v.target, 30, true)} ${v.result}${detail}${noisy}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------- main

function gitRevision() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}+uncommitted-src-changes` : head;
  } catch {
    return null;
  }
}

async function main() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const cpus = os.cpus();
  const results = {
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    machine: {
      cpus: cpus.length,
      availableParallelism: os.availableParallelism(),
      cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
      totalMemMiB: Math.round(os.totalmem() / 1048576),
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
      loadAverageAtEnd: null,
      clockTicksPerSecond: CLK_TCK,
    },
    settings,
    servers: {},
    sanity: {},
    figures: {},
    verdicts: {},
  };

  log(`bench: temp dir ${tmp}${profileDir ? `, CPU profiles -> ${profileDir}` : ''}`);
  log('bench: starting Latchkey (CLI set-up, then serve) and the bare provider...');
  const wantPasskey = settings.figures.includes('passkey');
  const [lk, bare] = await Promise.all([startLatchkey({ tmp, profileDir, configYaml: settings.latchkeyConfigYaml, passkeyUser: wantPasskey }), startBare({ profileDir })]);
  const servers = { latchkey: lk, bare };
  results.servers = {
    latchkey: { version: pkg.version, revision: gitRevision(), bin: LATCHKEY_BIN, issuer: lk.issuer, audience: lk.audience, pid: lk.pid, database: 'sqlite (fresh temp file)' },
    // node-oidc-provider as published: Latchkey's patches/ undone on a copy (startBare)
    bare: { oidcProviderVersion: bare.oidcProvider.version, oidcProvider: `as published: ${bare.oidcProvider.copy} with ${bare.oidcProvider.reversedPatches.join(', ') || 'no patches'} undone`, issuer: bare.issuer, audience: bare.audience, pid: bare.pid, adapter: 'in-memory (default)' },
  };
  const targets = {};
  for (const [name, s] of Object.entries(servers)) {
    targets[name] = createTarget({
      origin: s.origin,
      issuer: s.issuer,
      clientId: s.webClient.id,
      clientSecret: s.webClient.secret,
      redirectUri: s.webClient.redirectUri,
      email: s.user.email,
      password: s.user.password,
      connections: settings.signInConcurrency * 2,
    });
  }

  for (const [name, s] of Object.entries(servers)) {
    const check = await sanity(s, targets[name]);
    results.sanity[name] = check;
    if (!check.ok) throw new Error(`${name} failed the sanity checks:\n  ${check.problems.join('\n  ')}`);
  }
  log('bench: both servers pass the sanity checks (EdDSA JWT access token for the audience, Ed25519/RSA/P-256 in JWKS, password sign-in works)');

  if (wantPasskey) {
    // once, through the real pages: password sign-in of a second user, the passkey offer, registration;
    // then one passkey sign-in as a check. One credential serves every worker: signCount "zero" (as synced
    // passkeys report) lets concurrent assertions of the same credential through; an incrementing counter
    // would race (a regression is refused by design).
    const { SoftAuthenticator } = await loadSoftAuthenticator();
    const authenticator = new SoftAuthenticator({ signCount: 'zero' });
    let enrolled;
    let check;
    try {
      enrolled = await enrolPasskey(targets.latchkey, authenticator, lk.passkeyUser);
      check = idTokenClaims(await passkeySignInOnce(targets.latchkey, authenticator));
    } catch (err) {
      throw new Error(`latchkey: passkey set-up failed: ${err.message}`);
    }
    lk.passkey = { authenticator };
    results.sanity.latchkey.passkey = { user: lk.passkeyUser.email, credentialId: enrolled.credentialId, enrolmentAmr: enrolled.amr, passkeySignInAmr: check.amr ?? null, passkeySignInSub: check.sub };
    if (check.sub !== lk.passkeyUser.id) throw new Error(`latchkey: the passkey sign-in returned sub ${check.sub}, expected ${lk.passkeyUser.id}`);
    log(`bench: passkey enrolled through the pages for ${lk.passkeyUser.email}; a passkey sign-in works (amr ${JSON.stringify(check.amr ?? null)})`);
  }

  for (const figure of settings.figures) {
    results.figures[figure] = {};
    if (INTERLEAVED.has(figure) && settings.ratioWindows > 1) {
      log(`bench: ${figure}: warm-up ${settings.warmupSeconds}s each, then ${settings.ratioWindows} interleaved windows of ${round(settings.secondsPerFigure / settings.ratioWindows, 2)}s per server`);
      for (const [name, s] of Object.entries(servers)) await measure(figure, s, targets[name], settings.warmupSeconds);
      await sleep(300);
      const { result, backgroundCores, benchProcessCores } = await withBackground([lk.pid, bare.pid], () => interleavedFigure(figure, servers, targets, settings.secondsPerFigure));
      for (const [name, r] of Object.entries(result)) {
        r.serverRssMiBAfter = rssMiB(servers[name].pid);
        r.loadGeneratorCores = benchProcessCores;
        r.backgroundCores = backgroundCores;
        results.figures[figure][name] = r;
      }
      if (backgroundCores > settings.noisyBackgroundCores) log(`bench: NOTE other processes used ${backgroundCores} CPU cores during ${figure}: figures are noisy`);
    }
    for (const [name, s] of Object.entries(servers)) {
      if (results.figures[figure][name]) continue; // measured interleaved above
      if (LATCHKEY_ONLY.has(figure) && name !== 'latchkey') continue;
      log(`bench: ${figure} / ${name}: warm-up ${settings.warmupSeconds}s, measure ${settings.secondsPerFigure}s`);
      await measure(figure === 'burst' ? 'client_credentials' : figure, s, targets[name], settings.warmupSeconds);
      await sleep(300);
      const main0 = mainThreadCpuSeconds(s.pid);
      const all0 = cpuSeconds(s.pid);
      const { result: r, backgroundCores, benchProcessCores } = await withBackground([lk.pid, bare.pid], () => measure(figure, s, targets[name], settings.secondsPerFigure));
      const mainCpu = mainThreadCpuSeconds(s.pid) - main0;
      // clock-tick granularity (10 ms) can make a tiny difference negative
      r.serverCpuSplit = { eventLoopThreadSeconds: round(mainCpu, 2), otherThreadsSeconds: round(Math.max(0, cpuSeconds(s.pid) - all0 - mainCpu), 2) };
      const done = r.flows ?? r.ok;
      if (done) {
        // CPU milliseconds per request (per completed flow for sign-in) on the event loop and on other threads
        r.serverCpuSplit.eventLoopMsPerUnit = round((1000 * mainCpu) / done, 3);
        r.serverCpuSplit.otherThreadsMsPerUnit = round((1000 * r.serverCpuSplit.otherThreadsSeconds) / done, 3);
      }
      r.serverRssMiBAfter = rssMiB(s.pid);
      r.loadGeneratorCores = benchProcessCores;
      r.backgroundCores = backgroundCores;
      if (backgroundCores > settings.noisyBackgroundCores) {
        log(`bench: NOTE other processes used ${backgroundCores} CPU cores during ${figure} / ${name}: figures are noisy`);
      }
      results.figures[figure][name] = r;
      await sleep(500);
    }
    // passkey: its verdict compares with the signin figure, filled in after all figures ran
    results.verdicts[figure] = figure === 'passkey' ? {} : verdict(figure, results.figures[figure].latchkey, results.figures[figure].bare);
    const bg = Math.max(...Object.values(results.figures[figure]).map((r) => r.backgroundCores ?? 0));
    results.verdicts[figure].maxBackgroundCores = bg;
    results.verdicts[figure].noisy = bg > settings.noisyBackgroundCores;
    const f = results.figures[figure];
    for (const name of Object.keys(f)) {
      const r = f[name];
      const bad = r.non2xx || r.errors || r.timeouts || r.failed || r.idle?.non2xx || r.burst?.clientCredentials.non2xx || r.burst?.signIns.failed;
      if (bad) log(`bench: WARNING ${figure} / ${name} had failures: ${JSON.stringify({ statusCodes: r.statusCodes, errors: r.errors, failed: r.failed, samples: r.errorSamples ?? r.burst?.signIns.errorSamples })}`);
    }
    // the interleaved passkey / password cross-check, as soon as both figures are in (before the burst
    // figure: right after a burst, passkey flows measured 10-25% dearer for a while)
    if (results.figures.passkey && results.figures.signin && !results.figures.passkeyInterleaved && settings.ratioWindows > 0) {
      log(`bench: passkey / password on latchkey in ${settings.ratioWindows} interleaved pairs of ${round(settings.secondsPerFigure / settings.ratioWindows, 2)}s windows`);
      results.figures.passkeyInterleaved = await interleavedRatio(lk, targets.latchkey, settings.secondsPerFigure);
    }
  }

  if (results.figures.passkey) {
    // after every figure: it compares with the password sign-in figure, whichever order they ran in
    results.verdicts.passkey = {
      ...passkeyVerdict(results.figures.passkey.latchkey, results.figures.signin?.latchkey, results.figures.passkeyInterleaved),
      maxBackgroundCores: results.verdicts.passkey.maxBackgroundCores,
      noisy: results.verdicts.passkey.noisy,
    };
  }

  results.finishedAt = new Date().toISOString();
  results.machine.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
  for (const t of Object.values(targets)) await t.pool.close();
  await stopAll();
  if (profileDir) results.profiles = profileDir;

  mkdirSync(resultsDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const file = join(resultsDir, `${stamp}.json`);
  writeFileSync(file, json);
  writeFileSync(join(resultsDir, 'latest.json'), json);
  process.stdout.write(table(results));
  process.stdout.write(`\nResults: ${file} (and bench/results/latest.json)\n`);
  if (profileDir) process.stdout.write(`CPU profiles: ${profileDir} (summarise with: node bench/profile-summary.js <file>)\n`);
}

main()
  .catch(async (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    removeTmp();
  });
