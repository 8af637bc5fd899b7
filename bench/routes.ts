// Micro-benchmark of the route matcher: nanoseconds per match with 1, 20 and 1,000 routes, for requests that hit
// an exact host, a wildcard host, a deep prefix, and nothing at all. Run: node --import tsx bench/routes.ts
import { RouteMatcher } from '../src/routing/matcher.js';
import type { MatchInput, RouteConditions } from '../src/routing/conditions.js';

function table(n: number): RouteConditions[] {
  const routes: RouteConditions[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 4 === 0) routes.push({ hosts: [`svc${i}.example.com`], pathPrefix: `/api/v${i % 7}` });
    else if (i % 4 === 1) routes.push({ hosts: [`*.team${i}.example.com`], pathPrefix: '/' });
    else if (i % 4 === 2) routes.push({ pathPrefix: `/svc${i}/items`, methods: ['GET', 'POST'] });
    else routes.push({ path: `/svc${i}/status` });
  }
  routes.push({ pathPrefix: '/' });
  return routes;
}

const input = (method: string, host: string, path: string): MatchInput => ({ method, host, path, header: () => undefined });

const REQUESTS: [string, MatchInput][] = [
  ['exact host + prefix', input('GET', 'svc0.example.com', '/api/v0/users/42')],
  ['wildcard host', input('GET', 'a.b.team1.example.com', '/x')],
  ['deep prefix, method', input('POST', 'gw.example.com', '/svc2/items/7/parts/9')],
  ['catch-all', input('GET', 'gw.example.com', '/nothing/here/at/all')],
];

for (const n of [1, 20, 1000]) {
  const routes = table(n - 1);
  const matcher = new RouteMatcher(routes.map((conditions, i) => ({ conditions, value: i })));
  for (const [label, req] of REQUESTS) {
    let sink = 0;
    for (let i = 0; i < 200_000; i++) sink += matcher.match(req) ?? 0; // warm-up
    const iterations = 2_000_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += matcher.match(req) ?? 0;
    const ns = Number(process.hrtime.bigint() - start) / iterations;
    console.log(`${String(n).padStart(5)} routes  ${label.padEnd(22)} ${ns.toFixed(0).padStart(5)} ns/match  (${sink > 0 ? 'ok' : ''})`);
  }
}
