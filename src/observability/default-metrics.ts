// prom-client's default process metrics, minus one of its modules. prom-client's collectDefaultMetrics starts with
// processCpuTotal, and that module alone requires @opentelemetry/api (44 files: about 8 ms of start-up and 1 MB of
// memory) to attach trace exemplars, which the gateway never enables. The three CPU counters are rebuilt here with
// the same names, help texts and values; every other metric is prom-client's own module, called in prom-client's
// order, so /metrics prints exactly what collectDefaultMetrics would (default-metrics.test.ts
// compares the two). As in prom-client.ts, a release that moves these files fails at start-up, not later.
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import { Counter } from './prom-client.js';

const load = createRequire(import.meta.url);

type DefaultMetric = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/** prom-client's default metric modules after processCpuTotal, in the order its defaultMetrics.js registers them. */
const PROM_CLIENT_MODULES = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  // prom-client registers it only where Node has process.getActiveResourcesInfo (Node 20 does).
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/** process_cpu_{user,system}_seconds_total and process_cpu_seconds_total, as prom-client's processCpuTotal makes them. */
function processCpuTotal(registry: Registry): void {
  const registers = [registry];
  let last = process.cpuUsage();
  // One collect() sets all three, as prom-client does: they then come from the same reading.
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = now.user - last.user;
      const sys = now.system - last.system;
      last = now;
      this.inc(user / 1e6);
      systemCounter.inc(sys / 1e6);
      totalCounter.inc((user + sys) / 1e6);
    },
  });
  const systemCounter = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers });
  const totalCounter = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers });
}

/** Registers the default process metrics (CPU, memory, file descriptors, event loop lag, GC, version) on `registry`. */
export function collectDefaultMetrics(registry: Registry): void {
  processCpuTotal(registry);
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const name of PROM_CLIENT_MODULES) (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, config);
}
