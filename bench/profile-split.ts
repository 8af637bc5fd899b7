// Where each profiled run's CPU time a request goes, by owner, against the pass-through of the same round.
//
// Usage: npm run bench -- --profile core complete        (writes bench/results/profiles/<run>-round<N>/)
//        node --import tsx bench/profile-split.ts [--top 25] [--dir bench/results/profiles]
//
// A V8 CPU profile says which function was on the stack; the run's measured.json (written by bench/run.ts) says
// what a request cost, read from /proc. Each owner's share of the profile's busy samples is scaled by that cost, so
// the columns are CPU µs a request and add up to the measured figure. The profiler inflates every function alike;
// the split is what to read, not one function's absolute time. Owners:
//   gateway   Portcullis's own code (src/, dist/); for the pass-through, its few lines in bench/passthrough.ts
//   undici    node_modules/undici (the upstream client, its llhttp parser in WebAssembly included)
//   packages  every other package (jose, pino, prom-client, the Redis client…)
//   node      Node's own JavaScript (node:http, streams, timers, events)
//   regexp    regular expressions (whoever ran them: node's header checks, undici's, the gateway's)
//   native    C++ under JavaScript: socket and file writes, the clock, buffers (frames with no script)
//   gc        the garbage collector
//   v8        (program): V8 itself outside any frame (compilation, ICs, the profiler's own ticks)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './harness.js';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
interface Measured { name: string; requests: number; cpuUs: number }

const OWNERS = ['gateway', 'undici', 'packages', 'node', 'regexp', 'native', 'gc', 'v8'] as const;
type Owner = (typeof OWNERS)[number];

function ownerOf(frame: CallFrame): Owner | undefined {
  const { url, functionName } = frame;
  if (functionName === '(idle)' || functionName === '(root)') return undefined;
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)') return 'v8';
  if (functionName.startsWith('RegExp: ')) return 'regexp';
  if (url.includes('/node_modules/undici/') || url.startsWith('wasm://')) return 'undici';
  if (url.includes('/node_modules/')) return 'packages';
  if (url.startsWith('node:')) return 'node';
  if (url === '') return 'native';
  return 'gateway';
}

/** A function's label for --top: its name and the last two parts of its file. */
function labelOf(frame: CallFrame): string {
  const file = frame.url.split('/').slice(-2).join('/');
  return `${frame.functionName || '(anonymous)'} ${file}`.trim();
}

interface Split { measured: Measured; owners: Map<Owner, number>; functions: Map<string, number> }

/** The run's split in CPU µs a request: each owner's and function's share of the busy samples times the measured cost. */
function split(dir: string): Split | undefined {
  let measured: Measured;
  try {
    measured = JSON.parse(readFileSync(join(dir, 'measured.json'), 'utf8')) as Measured;
  } catch {
    return undefined; // a run from before measured.json, or one that never reached wrk
  }
  // The main thread's profile is the largest file (a tsx loader thread writes a small one of its own).
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return undefined;
  const largest = files.map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const profile = JSON.parse(readFileSync(largest, 'utf8')) as CpuProfile;
  const timeOf = new Map<number, number>();
  profile.samples.forEach((id, i) => timeOf.set(id, (timeOf.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const owners = new Map<Owner, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const owner = ownerOf(node.callFrame);
    const time = timeOf.get(node.id) ?? 0;
    if (owner === undefined || time === 0) continue;
    busy += time;
    owners.set(owner, (owners.get(owner) ?? 0) + time);
    const label = labelOf(node.callFrame);
    functions.set(label, (functions.get(label) ?? 0) + time);
  }
  if (busy === 0) return undefined;
  const scale = measured.cpuUs / busy;
  for (const [k, v] of owners) owners.set(k, v * scale);
  for (const [k, v] of functions) functions.set(k, v * scale);
  return { measured, owners, functions };
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i === -1 ? undefined : process.argv[i + 1];
}

const dir = argValue('--dir') ?? join(ROOT, 'bench/results/profiles');
const top = Number(argValue('--top') ?? 0);
const runs = readdirSync(dir)
  .map((name) => ({ name, round: Number(/-round(\d+)$/.exec(name)?.[1] ?? 0), split: split(join(dir, name)) }))
  .filter((r): r is { name: string; round: number; split: Split } => r.split !== undefined)
  .sort((a, b) => a.round - b.round || Number(b.name.startsWith('pass-through')) - Number(a.name.startsWith('pass-through')) || a.name.localeCompare(b.name));
if (runs.length === 0) {
  process.stderr.write(`no profiled runs with measured.json under ${dir}: run npm run bench -- --profile <scenario> first\n`);
  process.exit(1);
}

const fmt = (n: number) => n.toFixed(1);
const head = ['run', 'CPU µs/req', ...OWNERS];
const rows: string[][] = [];
for (const run of runs) {
  const base = runs.find((r) => r.round === run.round && r.name.startsWith('pass-through'));
  const cells = [run.name, fmt(run.split.measured.cpuUs), ...OWNERS.map((o) => fmt(run.split.owners.get(o) ?? 0))];
  rows.push(cells);
  if (base !== undefined && base !== run) {
    const diff = (o: Owner) => (run.split.owners.get(o) ?? 0) - (base.split.owners.get(o) ?? 0);
    rows.push(['  over the pass-through', fmt(run.split.measured.cpuUs - base.split.measured.cpuUs), ...OWNERS.map((o) => (diff(o) >= 0 ? '+' : '') + fmt(diff(o)))]);
  }
}
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
process.stdout.write(`CPU µs a request by owner (profile shares scaled by the measured CPU time a request)\n${line(head)}\n`);
process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
for (const r of rows) process.stdout.write(`${line(r)}\n`);

if (top > 0) {
  for (const run of runs) {
    if (run.name.startsWith('pass-through')) continue;
    const base = runs.find((r) => r.round === run.round && r.name.startsWith('pass-through'));
    const delta = [...run.split.functions].map(([k, v]) => [k, v - (base?.split.functions.get(k) ?? 0)] as const);
    delta.sort((a, b) => b[1] - a[1]);
    process.stdout.write(`\n${run.name}: the ${top} functions that cost most over the pass-through (CPU µs a request)\n`);
    for (const [k, v] of delta.slice(0, top)) process.stdout.write(`${fmt(v).padStart(6)}  ${k}\n`);
  }
}
