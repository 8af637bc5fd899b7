// While tracing is on, the W3C trace headers (and the trace-id response header) are the gateway's: a route may not
// rewrite them. While it is off, they are ordinary headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { ConfigError, parseConfigText } from '../../config/load.js';

function configWith(tracing: Record<string, unknown>, route: Record<string, unknown>): string {
  return stringify({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] },
    routes: [{ name: 'api', match: { path_prefix: '/api' }, service: 'default', ...route }],
    tracing,
  });
}

const ON = { otlp_endpoint: 'http://127.0.0.1:4318/v1/traces', response_header: 'X-Trace-Id' };

test('tracing on: a route that sets or removes traceparent/tracestate is refused', () => {
  for (const rewrite of [{ set: { traceparent: 'x' } }, { remove: ['TraceState'] }]) {
    assert.throws(
      () => parseConfigText(configWith(ON, { request_headers: rewrite })),
      (err: unknown) => err instanceof ConfigError && /request_headers: "(traceparent|tracestate)" is set by the gateway/i.test(err.message),
    );
  }
  assert.throws(
    () => parseConfigText(configWith(ON, { response_headers: { set: { 'x-trace-id': 'x' } } })),
    (err: unknown) => err instanceof ConfigError && /response_headers: "x-trace-id" is set by the gateway/.test(err.message),
  );
});

test('tracing off: the same rewrites are ordinary', () => {
  assert.doesNotThrow(() => parseConfigText(configWith({}, { request_headers: { set: { traceparent: 'x' } } })));
  assert.doesNotThrow(() => parseConfigText(configWith({}, { response_headers: { set: { 'x-trace-id': 'x' } } })));
});
