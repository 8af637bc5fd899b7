// What was wrong (found by review): the identity header names (middleware.auth.user_id_header, user_email_header,
// consumer_id_header, consumer_name_header) took any header name. The gateway deletes each from every request and
// writes it for a verified caller, so `user_email_header: Content-Length` refused every authenticated request 400,
// `X-Request-ID` or `X-Forwarded-For` reached the backend as the user's id or email (and not at all for anonymous
// requests), and two names a backend reads alike (`X-Principal` for a user and an API key consumer) let one pass for
// the other. check-config said ok to all of them; each is now a config error naming its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrorOf } from '../helpers/config-error.js';
import { runCli, upstreams, writeConfig } from '../helpers/gateway.js';

const BASE = 'load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }] }\n';
const withAuth = (fields: string) => `${BASE}middleware: { auth: { ${fields} } }\n`;

test('an identity header named after a header HTTP or the gateway uses is refused, in any spelling', () => {
  for (const [key, name] of [
    ['user_email_header', 'Content-Length'],
    ['user_email_header', 'transfer_encoding'],
    ['user_id_header', 'Host'],
    ['user_id_header', 'Authorization'],
    ['user_id_header', 'X-Request-ID'],
    ['consumer_id_header', 'X_Forwarded_For'],
    ['consumer_name_header', 'X-Forwarded-Prefix'],
    ['consumer_name_header', 'X-Real-IP'],
    ['user_id_header', 'traceparent'],
    ['user_email_header', 'True-Client-IP'],
    ['consumer_id_header', 'X-API-Key'],
    ['user_id_header', 'Cookie'],
    ['user_id_header', 'X-Proxy-By'],
    // From the fix's review: the WebSocket handshake's and browsers' own headers, and conditional requests'.
    ['consumer_id_header', 'Sec-WebSocket-Key'],
    ['consumer_name_header', 'sec_websocket_protocol'],
    ['user_id_header', 'Origin'],
    ['user_email_header', 'If-None-Match'],
    ['user_email_header', 'Range'],
    ['user_id_header', 'Accept-Encoding'],
    ['user_id_header', 'Via'],
  ] as const) {
    assert.match(configErrorOf(withAuth(`${key}: ${name}`)), new RegExp(`^middleware\\.auth\\.${key}: "${name}" is a header HTTP or the gateway itself uses`), `${key}: ${name}`);
  }
});

test('two identity headers a backend would read as one are refused', () => {
  assert.match(
    configErrorOf(withAuth('user_id_header: X-Principal, consumer_id_header: X-Principal')),
    /^middleware\.auth\.consumer_id_header: "X-Principal" names the same header as middleware\.auth\.user_id_header/,
  );
  assert.match(
    configErrorOf(withAuth('user_email_header: X-Principal-Name, consumer_name_header: X_Principal_Name')),
    /^middleware\.auth\.consumer_name_header: "X_Principal_Name" names the same header as middleware\.auth\.user_email_header/,
  );
  assert.match(configErrorOf(withAuth('user_id_header: x-consumer-id')), /^middleware\.auth\.consumer_id_header: "X-Consumer-Id" names the same header as middleware\.auth\.user_id_header/);
});

test('check-config refuses them with exit 1; names of their own (the defaults too) are fine', async () => {
  const bad = await runCli(['check-config', '--config', writeConfig({ load_balancing: { upstreams: upstreams([3000]) }, middleware: { auth: { user_email_header: 'Content-Length' } } })], {}, { boundMs: 15_000 });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /middleware\.auth\.user_email_header: "Content-Length" is a header HTTP or the gateway itself uses/);
  const good = await runCli(['check-config', '--config', writeConfig({ load_balancing: { upstreams: upstreams([3000]) }, middleware: { auth: { user_id_header: 'X-Principal-Id', consumer_id_header: 'X-Client-Id' } } })], {}, { boundMs: 15_000 });
  assert.equal(good.code, 0, good.stderr);
});
