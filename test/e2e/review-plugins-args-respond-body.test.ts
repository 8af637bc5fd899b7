// ctx.respond(status, body): an object body is sent as JSON (README, "ctx.respond"), so one whose JSON would silently
// drop what it holds is a TypeError at the call. Before, a promise (a body the plugin forgot to await), a Map, a Set,
// an ArrayBuffer or a DataView was answered 200 `{}`, an Int16Array `{"0":1,"1":2}`, and the same nested in an
// object, with no error for the plugin.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const BAD = [
  `Promise.resolve({ a: 1 })`,
  `{ then(resolve) { resolve(1); } }`,
  `new Map([['a', 1]])`,
  `new Set([1])`,
  `new ArrayBuffer(4)`,
  `new DataView(new ArrayBuffer(2))`,
  `new Int16Array([1, 2])`,
  `new Blob(['x'])`,
  `{ user: Promise.resolve('me') }`,
  `[new Map([['a', 1]])]`,
  `{ bytes: new Uint8Array([1, 2]) }`,
  // review16: a stream went out as its internals (a file's path, its buffered bytes) and its descriptor leaked; an
  // Error, a fetch Response or Headers as {}.
  `(await import('node:fs')).createReadStream(process.execPath)`,
  `new (await import('node:stream')).PassThrough()`,
  `{ file: (await import('node:fs')).createReadStream(process.execPath) }`,
  `new Error('boom')`,
  `new Response('hi')`,
  `new Headers({ a: 'b' })`,
  `new URLSearchParams('a=1')`,
];

/** Bodies of classes whose JSON holds their data: sent as it is. */
const GOOD = [
  [`new Date(0)`, '"1970-01-01T00:00:00.000Z"'],
  [`new URL('http://a.test/x')`, '"http://a.test/x"'],
  [`new (class Point { constructor() { this.x = 1; } })()`, '{"x":1}'],
  [`Object.create(null)`, '{}'],
  // From the fix's review: boxed primitives are JSON as their value; another realm's plain object is plain.
  [`{ n: new Number(5), b: new Boolean(true), s: new String('x') }`, '{"n":5,"b":true,"s":"x"}'],
  [`{ data: (await import('node:vm')).runInNewContext('({ a: 1 })') }`, '{"data":{"a":1}}'],
  [`{ data: (await import('node:vm')).runInNewContext('({})') }`, '{"data":{}}'],
] as const;

describe('ctx.respond(): a body JSON cannot carry', () => {
  const gateway = expressionGatewayHooks('memory');

  for (const body of BAD) {
    test(`respond(200, ${body}) throws a TypeError: 500 plugin_failed naming the plugin, never 200 {}`, async () => {
      assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': `ctx.respond(200, ${body})` }));
    });
  }
  for (const [body, json] of GOOD) {
    test(`respond(200, ${body}) is sent as its JSON`, async () => {
      const res = await gateway.g.call({ 'x-call': `ctx.respond(200, ${body})` });
      assert.equal(res.status, 200);
      assert.equal(res.text, json);
    });
  }
});
