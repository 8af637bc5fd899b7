// Shared setup of the plugin suites: fixture paths, the events fixtures record, a gateway with plugins in front of an echo backend.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient as createRedis } from '@redis/client';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';

/** Absolute path of a fixture plugin module. */
export function fixture(file: string): string {
  return new URL(`./fixtures/${file}`, import.meta.url).pathname;
}

/** The hook calls the fixtures recorded on `channel` (they run in this process). */
export function events(channel: string): string[] {
  const all = ((globalThis as { __pluginEvents?: Record<string, string[]> }).__pluginEvents ??= {});
  return (all[channel] ??= []);
}

export interface PluginGateway {
  readonly gw: InProcessGateway;
  readonly backend: TestBackend;
  close(): Promise<void>;
}

/** An echo backend and an in-process gateway with `plugins` declared and `order` in middleware.plugins. */
export async function gatewayWithPlugins(
  plugins: ConfigInput[],
  order: string[],
  extra: ConfigInput = {},
): Promise<PluginGateway> {
  const backend = await startBackend('echo');
  const middleware = (extra.middleware ?? {}) as ConfigInput;
  let gw: InProcessGateway;
  try {
    gw = await startInProcess({
      ...extra,
      load_balancing: { upstreams: upstreams([backend.port]) },
      plugins,
      middleware: { ...middleware, plugins: order },
    });
  } catch (err) {
    await backend.stop();
    throw err;
  }
  return {
    gw,
    backend,
    async close() {
      await gw.close();
      await backend.stop();
    },
  };
}

/**
 * A plugin (instance `args`) that runs the JavaScript expression a request names, with `api` and `ctx` in scope:
 * header x-call in onRequest (a non-undefined result is answered 200 `{ result }` by respond()), x-upstream in
 * onUpstreamRequest, x-response in onResponse. Lets one gateway try many calls of the plugin API; nothing is caught,
 * so a throw ends as the plugin failure the README describes.
 */
export const EXPRESSION_PLUGIN = `
export default {
  name: 'args',
  create(config, api) {
    const run = (code, ctx) => new Function('api', 'ctx', 'return (async () => (' + code + '))()')(api, ctx);
    return {
      async onRequest(ctx) {
        const code = ctx.request.headers['x-call'];
        if (code === undefined) return;
        const out = await run(code, ctx);
        if (out !== undefined) ctx.respond(200, { result: out });
      },
      async onUpstreamRequest(ctx) { const code = ctx.request.headers['x-upstream']; if (code !== undefined) await run(code, ctx); },
      async onResponse(ctx) { const code = ctx.request.headers['x-response']; if (code !== undefined) await run(code, ctx); },
    };
  },
};
`;

export type StoreKind = 'memory' | 'redis';

/**
 * An echo backend and a gateway running EXPRESSION_PLUGIN (written to a temp dir) on every request, with the
 * memory store or the shared test Redis (a key prefix of its own, deleted by close()). Resolves to a skip message
 * instead when Redis is asked for and unreachable outside CI.
 */
export async function expressionGateway(store: StoreKind): Promise<(PluginGateway & { call(headers: Record<string, string>): Promise<TestResponse> }) | string> {
  let extra: ConfigInput = {};
  let keyPrefix: string | undefined;
  if (store === 'redis') {
    const skip = await requireRedis();
    if (skip) return skip;
    keyPrefix = uniquePrefix('plugin-args');
    extra = { redis: { url: REDIS_URL, key_prefix: keyPrefix } };
  }
  const dir = mkdtempSync(join(tmpdir(), 'plugin-args-'));
  writeFileSync(join(dir, 'args.mjs'), EXPRESSION_PLUGIN);
  let started: PluginGateway;
  try {
    started = await gatewayWithPlugins([{ name: 'args', module: join(dir, 'args.mjs') }], ['args'], extra);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const client = createClient();
  // Redis connects in the background: wait until a store call goes through.
  for (let i = 0; i < 50; i++) {
    const res = await client.request(`${started.gw.url}/`, { headers: { 'x-call': `api.store.get('ready').then(() => 1)` } });
    if (res.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    ...started,
    call: (headers) => client.request(`${started.gw.url}/`, { headers }),
    async close() {
      await started.close();
      rmSync(dir, { recursive: true, force: true });
      if (keyPrefix !== undefined) await deleteKeys(`${keyPrefix}*`);
    },
  };
}

async function deleteKeys(pattern: string): Promise<void> {
  const redis = createRedis({ url: REDIS_URL });
  await redis.connect();
  try {
    const keys = await redis.keys(pattern);
    if (keys.length > 0) await redis.del(keys);
  } finally {
    await redis.close();
  }
}

/**
 * Asserts the plugin-failure answer of the README: 500 `plugin_failed` with the catalogue's body (no message, no
 * stack), and one `Plugin Failed` line for the request naming plugin `plugin`, `hook` and the error's class.
 */
export function assertPluginFailed(
  gw: InProcessGateway,
  res: TestResponse,
  expected: { plugin?: string; hook?: string; error?: string } = {},
): void {
  const { plugin = 'args', hook = 'onRequest', error = 'TypeError' } = expected;
  assert.equal(res.status, 500, res.text);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'request_id']);
  assert.equal(body.code, 'plugin_failed');
  assert.equal(body.error, 'Internal Server Error');
  assert.doesNotMatch(res.text, /\n\s+at |TypeError/);
  const id = res.headers['x-request-id'];
  const failed = gw.logs.filter((l) => l.request_id === id && l.msg === 'Plugin Failed');
  assert.equal(failed.length, 1, JSON.stringify(gw.logs.filter((l) => l.request_id === id)));
  assert.equal(failed[0]!.plugin, plugin);
  assert.equal(failed[0]!.hook, hook);
  assert.equal(failed[0]!.error, error);
  assert.equal(failed[0]!.stack, undefined);
}

/** A started expressionGateway. */
export type ExpressionGateway = Exclude<Awaited<ReturnType<typeof expressionGateway>>, string>;

/**
 * Registers before/after hooks in the calling describe() that start and stop an expressionGateway on `store`; `g` is
 * set once the before hook has run. Without Redis (and CI not set: requireRedis throws under CI=true) `skip` holds
 * the reason instead, for the tests' t.skip.
 */
export function expressionGatewayHooks(store: StoreKind): { readonly g: ExpressionGateway; readonly skip: string | undefined } {
  const state: { g: ExpressionGateway; skip: string | undefined } = { g: undefined as unknown as ExpressionGateway, skip: undefined };
  before(async () => {
    const started = await expressionGateway(store);
    if (typeof started === 'string') state.skip = started;
    else state.g = started;
  });
  after(async () => {
    await (state.g as ExpressionGateway | undefined)?.close();
  });
  return state;
}
