// What every fuzz target checks of its gateway child process, whatever traffic it sent: its RSS and CPU time during
// the run, and once traffic has stopped that it is alive, its gauges back at 0, /health 200, its memory back near its
// start and nothing uncaught on its stderr. The targets (harness.ts, grpc-harness.ts) add their own checks.
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import type { GatewayProcess } from '../test/helpers/gateway.js';
import { rssBytes, sleep } from '../test/helpers/wait.js';

/** Memory may stay this far above its post-warm-up level once traffic has stopped (V8 keeps some heap). */
const RSS_SLACK_BYTES = 64 * 1024 * 1024;

/** User + system CPU seconds of process `pid` (Linux /proc; clock ticks assumed 100 Hz). */
export function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}

/**
 * Gauges that must be back at 0 once traffic has stopped (the admin port's own request is not counted): a request,
 * client connection or upstream slot that never ended is a leak, whatever the RSS says.
 */
export async function leftoverGauges(adminPort: number): Promise<string[]> {
  const res = await request(`http://127.0.0.1:${adminPort}/metrics`, { headersTimeout: 3_000, bodyTimeout: 3_000 });
  const text = await res.body.text();
  const gauges = /^(portcullis_requests_in_flight|portcullis_client_connections|portcullis_upstream_in_flight)(\{[^}]*\})? (\S+)$/gm;
  const left: string[] = [];
  for (const [, name, labels, value] of text.matchAll(gauges)) if (Number(value) !== 0) left.push(`${name}${labels ?? ''}=${value}`);
  return left;
}

/** The gateway's RSS at the run's start, its peak, and the CPU time it used during the run. */
export interface RunUsage {
  readonly rssStart: number;
  readonly rssPeak: number;
  readonly cpuSeconds: number;
}

/** Starts sampling the gateway's RSS every 100 ms and counting its CPU time. */
export function sampleRun(pid: number): { stop(): RunUsage } {
  const rssStart = rssBytes(pid);
  const cpuAtStart = cpuSecondsOf(pid);
  let rssPeak = rssStart;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rssBytes(pid));
    } catch {
      // The process ended: reported as not alive by checkSurvival.
    }
  }, 100);
  return {
    stop() {
      clearInterval(sampler);
      return { rssStart, rssPeak, cpuSeconds: cpuSecondsOf(pid) - cpuAtStart };
    },
  };
}

/** The report fields every target shares. */
export interface SurvivalFields {
  readonly alive: boolean;
  readonly healthStatus: number;
  readonly rssStartMb: number;
  readonly rssPeakMb: number;
  readonly rssEndMb: number;
  /** CPU time the gateway used during the traffic: tells a busy gateway from one starved by a loaded machine. */
  readonly gatewayCpuSeconds: number;
  /** The gateway's last warning and error log lines (message and code only), to explain a failure. */
  readonly warnings: readonly string[];
}

/**
 * Once traffic has stopped: waits `quietMs` for the gateway's timeouts to fire and closed sockets to be noticed, then
 * polls the gauges and `health` for up to 15 s (a loaded machine can take a while) before what is left counts. Returns
 * the shared report fields and the shared failures.
 */
export async function checkSurvival(
  gw: GatewayProcess,
  run: RunUsage,
  health: () => Promise<number>,
  quietMs: number,
): Promise<{ fields: SurvivalFields; failures: string[] }> {
  const exited = (): boolean => gw.child.exitCode !== null || gw.child.signalCode !== null;
  await sleep(quietMs);
  let leftovers: string[] = [];
  let healthStatus = 0;
  const settleBy = Date.now() + 15_000;
  do {
    if (exited() || gw.adminPort === undefined) break;
    leftovers = await leftoverGauges(gw.adminPort).catch((err: unknown) => [`admin unreachable: ${String(err)}`]);
    healthStatus = leftovers.length === 0 ? await health() : 0;
    if (leftovers.length === 0 && healthStatus === 200) break;
    await sleep(500);
  } while (Date.now() < settleBy);
  const alive = !exited();
  const rssEnd = alive ? rssBytes(gw.child.pid!) : 0;
  const failures: string[] = [];
  if (leftovers.length > 0) failures.push(`requests or connections left open after the run: ${leftovers.join(', ')}`);
  if (!alive) failures.push(`gateway exited: ${gw.stderr().slice(0, 500)}`);
  if (healthStatus !== 200) failures.push(`/health answered ${healthStatus}`);
  if (alive && rssEnd > run.rssStart + RSS_SLACK_BYTES) failures.push(`memory did not come back: ${mb(run.rssStart)} MB → ${mb(rssEnd)} MB`);
  if (/uncaught|unhandled/i.test(gw.stderr())) failures.push(`stderr: ${gw.stderr().slice(0, 500)}`);
  const fields: SurvivalFields = {
    alive,
    healthStatus,
    rssStartMb: mb(run.rssStart),
    rssPeakMb: mb(run.rssPeak),
    rssEndMb: mb(rssEnd),
    gatewayCpuSeconds: Math.round(run.cpuSeconds * 10) / 10,
    warnings: gw.logs
      .filter((l) => typeof l.level === 'number' && l.level >= 40)
      .slice(-10)
      .map((l) => `${String(l.msg)} ${JSON.stringify({ reason: l.reason, cause: l.cause, upstream: l.upstream })}`),
  };
  return { fields, failures };
}
