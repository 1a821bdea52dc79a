// Summarises a V8 .cpuprofile (from BENCH_PROFILE=1, i.e. `node --cpu-prof`): where self time goes,
// by function and by module (a node_modules package, a Latchkey source file, or node internals).
//   node bench/profile-summary.js <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.js <file.cpuprofile> [top=25]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));

// self time per node from samples and timeDeltas (microseconds)
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function moduleOf(url) {
  if (!url) return '(native / V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node internals';
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return `latchkey ${url.slice(dist + 1)}`;
  return url.replace(/^file:\/\//, '');
}

const byFunction = new Map();
const byModule = new Map();
for (const [id, us] of self) {
  const { callFrame } = nodes.get(id);
  const name = callFrame.functionName || '(anonymous)';
  const where = callFrame.url ? `${moduleOf(callFrame.url)}:${callFrame.lineNumber + 1}` : '';
  const fkey = `${name} ${where}`.trim();
  byFunction.set(fkey, (byFunction.get(fkey) ?? 0) + us);
  const mkey = ['(idle)', '(program)', '(garbage collector)'].includes(name) ? name : moduleOf(callFrame.url);
  byModule.set(mkey, (byModule.get(mkey) ?? 0) + us);
}

// inclusive time per module: samples whose stack contains the module at least once
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, us] of self) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const n = nodes.get(cur);
    if (n.callFrame.url) seen.add(moduleOf(n.callFrame.url));
  }
  for (const m of seen) inclusive.set(m, (inclusive.get(m) ?? 0) + us);
}

const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const busy = total - (byModule.get('(idle)') ?? 0);
process.stdout.write(`${file}\nsampled ${(total / 1e6).toFixed(1)} s, of which not idle ${(busy / 1e6).toFixed(1)} s (main thread only: libuv pool work such as argon2 is not in here)\n`);
process.stdout.write('\nself time by module\n');
for (const [k, v] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(v)} ${ms(v)}  ${k}\n`);
process.stdout.write('\ninclusive time by module (stack contains it)\n');
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(v)} ${ms(v)}  ${k}\n`);
process.stdout.write('\nself time by function\n');
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(v)} ${ms(v)}  ${k}\n`);
