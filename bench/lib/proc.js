// Child processes of the benchmark (the two servers): spawning, CPU accounting and guaranteed cleanup.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, almost always 100). */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system, all threads) a process has used, together with its helper processes:
 * Latchkey hashes passwords in a child process, whose CPU time is the server's too. So this is
 * utime + stime of the process (fields 14, 15 of /proc/<pid>/stat), plus cutime + cstime (16, 17: children
 * that ended and were reaped, e.g. a helper that was restarted), plus the same, recursively, for each
 * live child process.
 */
export function cpuSeconds(pid) {
  const [utime, stime, cutime, cstime] = statFields(`/proc/${pid}/stat`);
  let seconds = (utime + stime + cutime + cstime) / CLK_TCK;
  for (const child of childPids(pid)) {
    try {
      seconds += cpuSeconds(child);
    } catch {
      // it ended meanwhile: its time moves into our cutime / cstime once reaped
    }
  }
  return seconds;
}

/** Processes whose parent is `pid` (field 4 of /proc/<n>/stat). */
export function childPids(pid) {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * CPU seconds of a process's main thread only (the thread whose id is the pid): the JavaScript event
 * loop. The difference to `cpuSeconds` is what other threads did (libuv pool: argon2, WebCrypto; V8 GC helpers).
 */
export function mainThreadCpuSeconds(pid) {
  return statCpu(`/proc/${pid}/task/${pid}/stat`);
}

function statCpu(file) {
  const [utime, stime] = statFields(file);
  return (utime + stime) / CLK_TCK;
}

/** utime, stime, cutime, cstime (fields 14-17) of a /proc stat file, in clock ticks. */
function statFields(file) {
  const stat = readFileSync(file, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14 -> index 11, stime 12, cutime 13, cstime 14
  return [11, 12, 13, 14].map((i) => Number(fields[i]));
}

/** Resident memory of a process in MiB (VmRSS from /proc/<pid>/status), or null. */
export function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set();
/** BENCH_SERVER_LOGS=1 echoes the servers' output to stderr (it is otherwise kept for error reports only). */
const ECHO = process.env.BENCH_SERVER_LOGS === '1';

/**
 * Spawns a long-running child and remembers it so that `stopAll()` (and the exit/signal handlers
 * installed by `installCleanup()`) always end it. stdout/stderr are kept (last 200 lines) for error reports.
 */
export function spawnChild(name, command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { name, child, log: [], exited: false, code: null, signal: null };
  const keep = (stream) => (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      entry.log.push(`[${name} ${stream}] ${line}`);
      if (ECHO) process.stderr.write(`[${name} ${stream}] ${line}\n`);
      if (entry.log.length > 200) entry.log.shift();
    }
  };
  child.stdout.on('data', keep('out'));
  child.stderr.on('data', keep('err'));
  entry.exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      entry.exited = true;
      entry.code = code;
      entry.signal = signal;
      children.delete(entry);
      resolve();
    });
  });
  children.add(entry);
  return entry;
}

/** Ends one child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(entry, graceMs = 5000) {
  if (entry.exited) return;
  try {
    entry.child.kill('SIGTERM');
  } catch {
    /* already gone */
  }
  const timer = setTimeout(() => {
    try {
      entry.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }, graceMs);
  await entry.exitPromise;
  clearTimeout(timer);
}

export async function stopAll() {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** Makes sure no server outlives the benchmark: normal exit, errors, Ctrl-C, SIGTERM, SIGHUP. */
export function installCleanup(onSignalCleanup = async () => {}) {
  process.once('exit', () => {
    for (const c of children) {
      try {
        c.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, async () => {
      process.stderr.write(`\nbench: ${signal} received, stopping the servers...\n`);
      const force = setTimeout(() => process.exit(130), 8000);
      force.unref();
      try {
        await stopAll();
        await onSignalCleanup();
      } finally {
        process.exit(130);
      }
    });
  }
}

/** Waits until `check()` resolves truthy, polling every 100 ms; fails after `timeoutMs` or when the child exits. */
export async function waitFor(entry, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (entry.exited) throw new Error(`${entry.name} exited (code ${entry.code}, signal ${entry.signal}) before it was ready:\n${entry.log.slice(-30).join('\n')}`);
    try {
      if (await check()) return;
    } catch {
      /* not ready yet */
    }
    if (Date.now() > deadline) throw new Error(`${entry.name} was not ready after ${timeoutMs} ms:\n${entry.log.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds all processors spent busy since boot (/proc/stat: everything but idle and iowait). */
export function systemBusySeconds() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK;
}

/**
 * Measures what else used the machine while `fn` ran: busy CPU time of the whole system minus the
 * given server processes and this process. Other work on a shared machine makes figures noisy.
 */
export async function withBackground(pids, fn) {
  const cpuOf = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const self = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const s0 = systemBusySeconds();
  const p0 = cpuOf();
  const me0 = self();
  const t0 = performance.now();
  const result = await fn();
  const elapsed = (performance.now() - t0) / 1000;
  const other = systemBusySeconds() - s0 - (cpuOf() - p0) - (self() - me0);
  return { result, backgroundCores: Math.max(0, Math.round((other / elapsed) * 100) / 100), benchProcessCores: Math.round(((self() - me0) / elapsed) * 100) / 100 };
}
