// Our default process metrics are prom-client's, metric for metric: a dashboard built on prom-client's names keeps
// working although the gateway skips the one module that loads @opentelemetry/api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectDefaultMetrics as promClientDefaults, Registry } from 'prom-client';
import { collectDefaultMetrics } from './default-metrics.js';

/** name, type, help and the label names of each metric, in the order /metrics prints them. */
async function shape(registry: Registry): Promise<string[]> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics.map((m) => {
    const labels = new Set(m.values.flatMap((v) => Object.keys(v.labels)));
    return `${m.name} ${m.type} ${m.help} [${[...labels].sort().join(',')}]`;
  });
}

test('the default metrics print the same metrics, types, help texts and labels, in the same order, as prom-client', async () => {
  const reference = new Registry();
  promClientDefaults({ register: reference });
  const ours = new Registry();
  collectDefaultMetrics(ours);
  const expected = await shape(reference);
  assert.ok(expected.length >= 20, `prom-client registers its defaults (${expected.length})`);
  assert.deepEqual(await shape(ours), expected);
  reference.clear();
  ours.clear();
});

test('the CPU counters count this process: user time grows with work, total is user + system', async () => {
  const registry = new Registry();
  collectDefaultMetrics(registry);
  const read = async (name: string): Promise<number> => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    return metric?.values[0]?.value ?? Number.NaN;
  };
  const before = await read('process_cpu_user_seconds_total');
  // Spin until this process has used 60 ms of user CPU (however long a busy machine makes that take).
  const start = process.cpuUsage().user;
  const giveUp = Date.now() + 10_000;
  while (process.cpuUsage().user - start < 60_000 && Date.now() < giveUp);
  assert.ok(process.cpuUsage().user - start >= 60_000, 'the spin got its 60 ms of CPU');
  // One scrape reads all three counters from one cpuUsage() reading (collect() runs on the user counter).
  const text = await registry.metrics();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const user = value('process_cpu_user_seconds_total');
  assert.ok(user - before >= 0.059, `user CPU grew by ${user - before} s over 60 ms of spinning`);
  assert.ok(Math.abs(value('process_cpu_seconds_total') - (user + value('process_cpu_system_seconds_total'))) < 1e-9);
  registry.clear();
});
