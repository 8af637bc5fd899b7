// GET /metrics rendered the whole registry's text once per request, on the event loop that also proxies: 250
// connections each pipelining 20 scrapes and reading nothing made the gateway render thousands of times in a row, and
// a proxied request waited 2.7 s behind them. Now scrapes that arrive together share one render (one at a time, and
// a scrape never gets a render begun before it arrived), and /api/status likewise. Shown by counting renders, not by
// timing them: a plugin metric counts the calls of its collection (and takes 100 ms, as a metric read from elsewhere
// does), and dozens of concurrent scrapes, or scrapes pipelined on many connections, must collect it far fewer times
// than there are scrapes, each scraper still getting a whole, valid exposition after the token check of its own
// request. A metric whose collection never settles is still left out after 2 s and logged, once per render.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';

/**
 * A plugin whose metric portcullis_plugin_r9_collects is the number of times it has been collected, each collection
 * taking 100 ms; a proxied request with `x-r9-hang: on|off` makes a second metric's collection never settle, or not.
 */
const PLUGIN = `
let collects = 0;
let hang = false;
const gauge = (name, value) => ({ name, help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value, labels: {} }] });
export default {
  name: 'r9-render-counter',
  create(config, api) {
    const registry = api.metrics.registry;
    registry.registerMetric({
      name: 'portcullis_plugin_r9_collects', help: 'h', type: 'gauge', aggregator: 'sum', reset() {},
      async get() {
        const n = ++collects;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return gauge('portcullis_plugin_r9_collects', n);
      },
    });
    registry.registerMetric({
      name: 'portcullis_plugin_r9_hangs', help: 'h', type: 'gauge', aggregator: 'sum', reset() {},
      get: () => (hang ? new Promise(() => {}) : gauge('portcullis_plugin_r9_hangs', 0)),
    });
    return {
      onRequest(ctx) {
        const h = ctx.request.headers['x-r9-hang'];
        if (h !== undefined) { hang = h === 'on'; ctx.respond(200, { hang }); }
      },
    };
  },
};
`;

const client = createClient();
let dir: string;
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'r9-render-'));
  writeFileSync(join(dir, 'counter.mjs'), PLUGIN);
  backend = await startBackend('echo');
  gw = await spawnGateway({
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'r9-render-counter', module: join(dir, 'counter.mjs') }],
    middleware: { plugins: ['r9-render-counter'] },
    admin: { token: ADMIN_TOKEN },
  });
});
after(async () => {
  await gw?.cleanup();
  await backend?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SCRAPE = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Splits what a connection received into its responses, by Content-Length (every admin answer has one). */
function splitAnswers(data: Buffer, heads: readonly boolean[]): Answer[] {
  const answers: Answer[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    assert.ok(end !== -1, `an unfinished head: ${JSON.stringify(data.subarray(at, at + 200).toString())}`);
    const [statusLine, ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = heads[answers.length] === true ? 0 : Number(headers['content-length']);
    assert.ok(Number.isInteger(length), `no Content-Length: ${statusLine}`);
    const body = data.subarray(end + 4, end + 4 + length);
    assert.equal(body.length, length, 'the body is whole');
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body });
    at = end + 4 + length;
  }
  return answers;
}

/** Opens `count` connections, then writes each its requests in the same turn; resolves with every connection's answers. */
async function concurrently(requests: readonly (readonly string[])[]): Promise<Answer[][]> {
  const sockets = await Promise.all(
    requests.map(
      () =>
        new Promise<ReturnType<typeof connect>>((resolve, reject) => {
          const socket = connect(gw!.adminPort!, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  const received = sockets.map((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    return new Promise<Buffer>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => resolve(Buffer.concat(chunks)));
    });
  });
  sockets.forEach((socket, i) => socket.write(requests[i]!.join('')));
  const data = await Promise.all(received);
  return data.map((d, i) => splitAnswers(d, requests[i]!.map((r) => r.startsWith('HEAD'))));
}

/** A whole text exposition: every line a HELP, a TYPE or a sample; the gateway's and the plugin's metrics there. */
function assertExposition(answer: Answer, where: string): number {
  assert.equal(answer.status, 200, `${where}: ${answer.body.toString().slice(0, 200)}`);
  assert.match(answer.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  const text = answer.body.toString('utf8');
  assert.ok(text.endsWith('\n'), `${where}: the text ends with a line break`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    assert.match(line, /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/, `${where}: ${line}`);
  }
  assert.match(text, /^# TYPE portcullis_requests_total counter$/m, where);
  assert.match(text, /^portcullis_process_|^process_cpu/m, where);
  const collects = sampleValue(text, 'portcullis_plugin_r9_collects');
  assert.ok(collects !== undefined && collects >= 1, `${where}: the plugin's metric is there`);
  return collects;
}

/** How many times the plugin's metric has been collected, this scrape's own collection included. */
async function collectsSoFar(): Promise<number> {
  const res = await client.request(`http://127.0.0.1:${gw!.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200, res.text.slice(0, 200));
  return sampleValue(res.text, 'portcullis_plugin_r9_collects')!;
}

/** The collections made between two collectsSoFar() readings, neither reading's own counted. */
const between = (before: number, after: number): number => after - before - 1;

/** Waits until every log line written before now has been read: a request's access-log line comes after them. */
async function logsReadSoFar(): Promise<void> {
  const marker = `/r9-marker-${Math.random().toString(36).slice(2)}`;
  assert.equal((await client.request(`${gw!.url}${marker}`)).status, 200);
  await waitFor('the marker request logged', () => gw!.logs.some((l) => JSON.stringify(l).includes(marker)));
}

test('60 concurrent scrapes share renders: each gets a whole exposition, the token checked per request', async (t) => {
  const before = await collectsSoFar();
  const scrapes = 60;
  const requests: string[][] = [];
  for (let i = 0; i < scrapes; i++) requests.push([`${i % 10 === 9 ? 'HEAD' : 'GET'}${SCRAPE.slice(3)}Connection: close\r\n\r\n`]);
  // Interleaved: without the token, and with a wrong one: refused, never given the shared text.
  for (let i = 0; i < 4; i++) {
    const auth = i % 2 === 0 ? '' : 'Authorization: Bearer wrong-token\r\n';
    requests.push([`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Connection: close\r\n\r\n`]);
  }
  const answers = await concurrently(requests);
  for (let i = 0; i < scrapes; i++) {
    const [answer, extra] = answers[i]!;
    assert.equal(extra, undefined);
    if (requests[i]![0]!.startsWith('HEAD')) {
      assert.equal(answer!.status, 200);
      assert.ok(Number(answer!.headers['content-length']) > 1_000, 'HEAD gives the length of the text');
    } else assertExposition(answer!, `scrape ${i}`);
  }
  for (const [answer] of answers.slice(scrapes)) {
    assert.equal(answer!.status, 401);
    assert.doesNotMatch(answer!.body.toString(), /portcullis_/);
  }
  const collects = between(before, await collectsSoFar());
  t.diagnostic(`${collects} collections for ${scrapes} scrapes`);
  // One render per scrape before (60); shared now: a few, as the 100 ms collections follow each other.
  assert.ok(collects <= scrapes / 4, `${collects} collections for ${scrapes} concurrent scrapes`);
  assert.ok(collects >= 1);
});

test('scrapes pipelined on 20 connections share renders, in order, and a scrape sees what was counted before it', async (t) => {
  const before = await collectsSoFar();
  const perConnection = 10;
  const connections = 20;
  const requests = Array.from({ length: connections }, () =>
    Array.from({ length: perConnection }, (_, k) => `${SCRAPE}${k === perConnection - 1 ? 'Connection: close\r\n' : ''}\r\n`),
  );
  const answers = await concurrently(requests);
  for (const [c, list] of answers.entries()) {
    assert.equal(list.length, perConnection, `connection ${c}: every pipelined scrape answered`);
    let last = 0;
    for (const [k, answer] of list.entries()) {
      const seen = assertExposition(answer, `connection ${c}, scrape ${k}`);
      assert.ok(seen > last, `connection ${c}: scrape ${k} got a render made after the one before it`);
      last = seen;
    }
  }
  const collects = between(before, await collectsSoFar());
  t.diagnostic(`${collects} collections for ${connections * perConnection} scrapes`);
  assert.ok(collects <= (connections * perConnection) / 4, `${collects} collections for ${connections * perConnection} scrapes`);

  // A request proxied, then a scrape: its count is there (a shared render never began before the scrape arrived).
  const counted = async (): Promise<number> => {
    const res = await client.request(`http://127.0.0.1:${gw!.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return sampleValue(res.text, 'portcullis_requests_total', { route: 'proxy', service: 'default', method: 'GET', status: '200', upstream: `127.0.0.1:${backend!.port}` }) ?? 0;
  };
  const start = await counted();
  for (let i = 1; i <= 3; i++) {
    assert.equal((await client.request(`${gw!.url}/r9`)).status, 200);
    assert.equal(await counted(), start + i);
  }
});

test('concurrent /api/status requests are each answered whole', async () => {
  const requests = Array.from({ length: 30 }, () => [
    `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`,
    `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`,
  ]);
  requests.push([`GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`]);
  const answers = await concurrently(requests);
  for (const list of answers.slice(0, -1)) {
    assert.equal(list.length, 2);
    for (const answer of list) {
      assert.equal(answer.status, 200);
      const body = JSON.parse(answer.body.toString()) as { upstreams: unknown[]; uptime_ms: number };
      assert.equal(body.upstreams.length, 1);
      assert.equal(typeof body.uptime_ms, 'number');
    }
  }
  assert.equal(answers.at(-1)![0]!.status, 401);
});

test('a metric whose collection never settles is left out after its bound, logged once per render, not per scrape', async (t) => {
  assert.equal((await client.request(`${gw!.url}/`, { headers: { 'x-r9-hang': 'on' } })).status, 200);
  try {
    const scrapes = 20;
    const answers = await concurrently(Array.from({ length: scrapes }, () => [`${SCRAPE}Connection: close\r\n\r\n`]));
    for (const [i, [answer]] of answers.entries()) {
      assertExposition(answer!, `scrape ${i}`);
      assert.doesNotMatch(answer!.body.toString(), /r9_hangs/);
    }
    await logsReadSoFar();
    const failed = gw!.logs.filter((l) => l.msg === 'Metric Collect Failed' && l.metric === 'portcullis_plugin_r9_hangs');
    t.diagnostic(`${failed.length} Metric Collect Failed lines for ${scrapes} scrapes`);
    assert.ok(failed.length >= 1 && failed.length <= scrapes / 4, `${failed.length} lines for ${scrapes} scrapes`);
    assert.equal(failed[0]!.cause, 'timeout');
  } finally {
    await client.request(`${gw!.url}/`, { headers: { 'x-r9-hang': 'off' } });
  }
});
