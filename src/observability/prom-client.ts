// The parts of prom-client the gateway uses (Registry, Counter, Gauge, Histogram; default-metrics.ts the rest),
// each loaded from its own module. prom-client's index also loads Summary, the Pushgateway (node:http, node:https)
// and the cluster aggregator at import: about 2 MB of memory and a few ms of start-up for code the gateway never
// calls. The types are the package's own; as with balancer/undici.ts, a release that moves these files fails at
// start-up (every test catches it), not later.
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
