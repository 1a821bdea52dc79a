// autocannon runs, with sub-millisecond latency percentiles and the server's CPU time around them.
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { cpuSeconds } from './proc.js';

/** Nearest-rank percentile of an ascending Float64Array; null when empty. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** p50 / p90 / p99 / max of a list of latencies (ms). */
export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: round(percentile(sorted, 50), 3),
    p90: round(percentile(sorted, 90), 3),
    p99: round(percentile(sorted, 99), 3),
    max: round(sorted.length ? sorted[sorted.length - 1] : null, 3),
  };
}

export const round = (x, digits = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

/**
 * One autocannon run against `origin` with a fixed Host header. autocannon's own histogram has 1 ms
 * resolution (and corrects for coordinated omission when a rate is set); the percentiles here come from
 * every successful response's exact duration instead, so sub-millisecond latencies stay comparable.
 */
export async function cannon({ origin, host, path, method = 'GET', headers = {}, body, connections, seconds, overallRate, pid, keepLatencies = false }) {
  const latencies = [];
  const cpu0 = pid ? cpuSeconds(pid) : null;
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const instance = autocannon({
    url: `${origin}${path}`,
    method,
    headers: { host, ...headers },
    body,
    connections,
    pipelining: 1,
    duration: seconds,
    ...(overallRate ? { overallRate } : {}),
    timeout: 10,
  });
  instance.on('response', (_client, statusCode, _bytes, ms) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(ms);
  });
  const result = await instance;
  const elapsed = (performance.now() - t0) / 1000;
  const serverCpu = pid ? cpuSeconds(pid) - cpu0 : null;
  const clientCpu = process.cpuUsage(client0);
  const ok = result['2xx'];
  const rate = ok / result.duration;
  return {
    seconds: round(result.duration, 3),
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
    rate: round(rate, 1),
    latencyMs: summarize(latencies),
    serverCpuSeconds: round(serverCpu, 2),
    serverCpuUtilisation: serverCpu === null ? null : round(serverCpu / elapsed, 2),
    ratePerCpuSecond: serverCpu ? round(ok / serverCpu, 1) : null,
    loadGeneratorCpuSeconds: round((clientCpu.user + clientCpu.system) / 1e6, 2),
    ...(keepLatencies ? { latencies } : {}),
  };
}

/**
 * An open-loop generator sending one request every 1000/rate ms, evenly spaced, for `seconds`, over a
 * keep-alive pool large enough that a slow answer never delays the next send. Unlike autocannon's
 * `overallRate` (which resets a per-second quota on each connection, so every connection fires its
 * share back to back at the start of each second), this measures the latency of a request arriving
 * at a steady modest rate. Latency is counted from the scheduled send time, so a stalled load
 * generator cannot hide server delays (no coordinated omission); `sendLagMs` reports that stall.
 */
export async function paced({ origin, host, path, method = 'GET', headers = {}, body, rate, seconds, pid, connections = 16, keepSamples = false, stopped = () => false }) {
  const pool = new Pool(origin, { connections, keepAliveTimeout: 60_000, pipelining: 1 });
  const latencies = [];
  const lags = [];
  // keepSamples: every successful request's scheduled send time (ms since the epoch, comparable across
  // threads) and latency, for callers that split a run into windows
  const samples = keepSamples ? { due: [], latency: [] } : null;
  const statusCodes = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const period = 1000 / rate;
  const total = Math.round(rate * seconds);
  // open the connections first so that connection set-up is not measured
  await Promise.all(
    Array.from({ length: Math.min(connections, 4) }, () =>
      pool.request({ path: '/.well-known/openid-configuration', method: 'GET', headers: { host } }).then((r) => r.body.dump()),
    ),
  );
  const cpu0 = pid ? cpuSeconds(pid) : null;
  const t0 = performance.now();
  const inflight = [];
  for (let i = 0; i < total && !stopped(); i++) {
    const due = t0 + i * period;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lags.push(Math.max(0, performance.now() - due));
    inflight.push(
      pool.request({ path, method, headers: { host, ...headers }, body }).then(
        async (res) => {
          await res.body.dump();
          const ms = performance.now() - due;
          statusCodes[res.statusCode] = (statusCodes[res.statusCode] ?? 0) + 1;
          if (res.statusCode >= 200 && res.statusCode < 300) {
            ok++;
            latencies.push(ms);
            if (samples) {
              samples.due.push(performance.timeOrigin + due);
              samples.latency.push(ms);
            }
          } else non2xx++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  const serverCpu = pid ? cpuSeconds(pid) - cpu0 : null;
  await pool.close();
  return {
    generator: 'paced (evenly spaced, open loop)',
    seconds: round(elapsed, 3),
    targetRate: rate,
    requests: total,
    ok,
    non2xx,
    errors,
    statusCodes,
    rate: round(ok / elapsed, 1),
    latencyMs: summarize(latencies),
    sendLagMs: summarize(lags),
    serverCpuSeconds: round(serverCpu, 2),
    serverCpuUtilisation: serverCpu === null ? null : round(serverCpu / elapsed, 2),
    ...(samples ? { samples } : {}),
  };
}

/**
 * A 95% bootstrap interval of percentile(b, p) / percentile(a, p): both samples are drawn again with
 * replacement `rounds` times (a fixed-seed generator, so the same data always gives the same interval)
 * and the 2.5th and 97.5th percentiles of the ratios are returned. With 1000 requests per side a p99
 * rests on the 10 slowest of each, and the interval says how far another run of the same server could
 * land. Null when either sample is empty.
 */
export function ratioInterval(a, b, p = 99, rounds = 1000) {
  if (!a.length || !b.length) return null;
  let seed = 0x9e3779b9;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const draw = (values, into) => {
    for (let i = 0; i < into.length; i++) into[i] = values[Math.floor(random() * values.length)];
    return percentile(into.sort(), p);
  };
  const bufA = new Float64Array(a.length);
  const bufB = new Float64Array(b.length);
  const ratios = new Float64Array(rounds);
  for (let r = 0; r < rounds; r++) ratios[r] = draw(b, bufB) / draw(a, bufA);
  ratios.sort();
  return [round(percentile(ratios, 2.5), 2), round(percentile(ratios, 97.5), 2)];
}
