// Goal 4's verdict, paired: one long open-loop probe while the login load is switched on and off every few seconds.
// Measured one after the other, "without logins" and "with logins" fall in different minutes of a shared machine,
// and a stall of the machine in either decides the ratio of their p99s (the sequential rows of `npm run bench --
// logins` gave no verdict for that reason). Here both halves are spread over the same minute, window by window, and
// each request counts for the window it was due in, skipping the first `margin` ms after each switch (logins
// already sent finish on the gateway after a pause). A stall of the machine still lands in one window only and,
// at 1,000 requests/s, makes a few hundred slow requests: enough to decide the p99 of all the "on" (or "off")
// requests together. So the verdict is the median over the cycles of each on-window's p99 over the p99 of the
// off-window next to it, as bench/ab.ts takes the median of per-round ratios; the pooled p99s are printed too.
import { spawn } from 'node:child_process';
import { ROOT, percentile } from './harness.js';

/** A load that can be frozen and let go: the login worker (login-load.ts), or a control's burner (startBurner). */
export interface SwitchableLoad {
  pause(): void;
  resume(): void;
}

export interface WindowedLatency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
}

export interface PairedResult {
  /** Pooled over every on (off) window. */
  readonly on: WindowedLatency;
  readonly off: WindowedLatency;
  /** Each cycle's on-window p99 over its off-window p99, sorted. */
  readonly ratios: readonly number[];
  /** Seconds the login load ran (its windows, margins included). */
  readonly onSeconds: number;
}

export interface PairedOptions {
  readonly cpu: string;
  readonly rate: number;
  readonly seconds: number;
  /** Length of one window, ms. */
  readonly window?: number;
  /** Skipped at the start of each window, ms. */
  readonly margin?: number;
}

interface ProbeOutput {
  rate: number;
  errors: number;
  startEpoch: number;
  samples: Array<number | null>;
}

/** Runs bench/latency-probe.ts against `url` for `seconds`, pausing and resuming `load` every `window` ms. */
export async function pairedProbe(url: string, header: string | undefined, load: SwitchableLoad, options: PairedOptions): Promise<PairedResult> {
  const window = options.window ?? 2000;
  const margin = options.margin ?? 300;
  const args = ['-c', options.cpu, process.execPath, '--import', 'tsx', 'bench/latency-probe.ts', url, String(options.rate), String(options.seconds)];
  if (header) args.push(header);
  load.pause();
  /** Switch times (ms since the epoch); the load is on from switches[2k] to switches[2k+1]. */
  const switches: number[] = [];
  let on = false;
  const timer = setInterval(() => {
    on = !on;
    if (on) load.resume();
    else load.pause();
    switches.push(performance.timeOrigin + performance.now());
  }, window);
  let output: ProbeOutput;
  try {
    output = await new Promise<ProbeOutput>((resolve, reject) => {
      const child = spawn('taskset', args, { cwd: ROOT, env: { ...process.env, PROBE_SAMPLES: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.once('exit', (code) => {
        if (code !== 0) reject(new Error(`latency probe exited with ${code}`));
        else resolve(JSON.parse(text.trim().split('\n').pop()!) as ProbeOutput);
      });
    });
  } finally {
    clearInterval(timer);
    load.resume();
  }
  if (output.errors > 0) process.stderr.write(`  note: paired probe: ${output.errors} failed requests\n`);
  /** Latencies by window: window w runs from switches[w - 1] (the probe's start for w = 0) to switches[w]. */
  const windows: number[][] = Array.from({ length: switches.length + 1 }, () => []);
  let onMs = 0;
  for (let i = 0; i + 1 < switches.length; i += 2) onMs += switches[i + 1]! - switches[i]!;
  // The last switch at or before a request's due time: its index's parity says on (even) or off (odd); none: off.
  let last = -1;
  output.samples.forEach((latency, i) => {
    if (latency === null) return;
    const due = output.startEpoch + (i * 1000) / output.rate;
    while (last + 1 < switches.length && switches[last + 1]! <= due) last++;
    const since = last < 0 ? Number.POSITIVE_INFINITY : due - switches[last]!;
    if (since >= margin) windows[last + 1]!.push(latency);
  });
  // Window w is "on" when it starts at an even switch index: w = 1, 3, 5… Its pair is the off-window before it.
  const ratios: number[] = [];
  for (let w = 1; w < windows.length; w += 2) {
    const on = summary(windows[w]!);
    const off = summary(windows[w - 1]!);
    if (on.count > 100 && off.count > 100) ratios.push(on.p99 / off.p99);
  }
  ratios.sort((a, b) => a - b);
  return {
    on: summary(windows.filter((_, w) => w % 2 === 1).flat()),
    off: summary(windows.filter((_, w) => w % 2 === 0).flat()),
    ratios,
    onSeconds: onMs / 1000,
  };
}

function summary(latencies: number[]): WindowedLatency {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/**
 * A control: a burner at SCHED_IDLE (util-linux's chrt) on `cpu`, the lowest priority Linux has. Run through
 * pairedProbe in place of the logins, it shows what a busy lowest-priority neighbour on the gateway's core costs
 * the proxied p99 on this machine before anything about logins: "cpu" spins in registers; "memory" walks a
 * 19 MiB array the way argon2id's default (19 MiB, data-dependent reads) does, sharing the caches and the memory
 * bus with every core.
 */
export function startBurner(cpu: string, kind: 'cpu' | 'memory'): SwitchableLoad & { stop(): void } {
  const code =
    kind === 'cpu'
      ? 'for (;;) {}'
      : 'const a = new BigUint64Array(19 * 131072); let x = 1n; for (;;) for (let i = 0; i < a.length; i += 8) { a[i] ^= x; x += a[(i * 7919) % a.length]; }';
  const child = spawn('taskset', ['-c', cpu, 'chrt', '--idle', '0', process.execPath, '-e', code], { stdio: 'ignore' });
  return {
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () => child.kill('SIGKILL'),
  };
}
