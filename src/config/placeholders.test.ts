// ${VAR} placeholders in every YAML style: flow mappings and sequences read them as block style does (same typing,
// same errors), and a variable's value is only ever one scalar, never YAML of its own.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './load.js';
import { configErrorOf as errorOf } from '../../test/helpers/config-error.js';
import type { Config } from './schema.js';


const upstreamOf = (config: Config) => config.load_balancing!.upstreams[0]!;

/** The same upstream in block style and in flow style, `port` given by `port`. */
function bothStyles(port: string): { block: string; flow: string } {
  return {
    block: `load_balancing:\n  upstreams:\n    - name: a\n      address: 127.0.0.1\n      port: ${port}\n`,
    flow: `load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: ${port}}]\n`,
  };
}

describe('placeholders in flow collections read as in block style', () => {
  test('an unquoted ${VAR} in a flow mapping inside a flow sequence is typed as YAML types it', () => {
    const { block, flow } = bothStyles('${MYPORT}');
    assert.equal(upstreamOf(parseConfigText(flow, { MYPORT: '3000' })).port, 3000);
    assert.deepEqual(parseConfigText(flow, { MYPORT: '3000' }), parseConfigText(block, { MYPORT: '3000' }));
  });

  test('${VAR:-default} in flow style: the default, or the variable when set, or the default when it is empty', () => {
    const { flow } = bothStyles('${MYPORT:-3001}');
    assert.equal(upstreamOf(parseConfigText(flow, {})).port, 3001);
    assert.equal(upstreamOf(parseConfigText(flow, { MYPORT: '4000' })).port, 4000);
    assert.equal(upstreamOf(parseConfigText(flow, { MYPORT: '' })).port, 3001);
    // A default holding flow indicators is still one value.
    const listed = parseConfigText(`${bothStyles('3000').flow}server: {trusted_proxies: [\${TP:-10.0.0.1}, "\${TP2:-::1}"], proxy_by: \${NAME:-a,b [c]}}\n`, {});
    assert.deepEqual(listed.server.trusted_proxies, ['10.0.0.1', '::1']);
    assert.equal(listed.server.proxy_by, 'a,b [c]');
  });

  test('flow sequences of scalars, booleans and nested flow collections', () => {
    const text = `load_balancing: {strategy: \${STRATEGY:-random}, upstreams: [{name: \${NAME}, address: \${HOST}, port: \${PORT}, weight: \${WEIGHT:-2}}]}
server: {trusted_proxies: [\${PROXY_A}, 192.168.0.0/16, \${PROXY_B:-fd00::/8}]}
middleware: {rate_limit: {enabled: \${RL:-false}, requests_per_minute: \${RPM}}}
`;
    const config = parseConfigText(text, { NAME: 'b1', HOST: '10.0.0.9', PORT: '8081', PROXY_A: '10.0.0.0/8', RL: 'true', RPM: '60' });
    assert.equal(config.load_balancing!.strategy, 'random');
    assert.deepEqual(upstreamOf(config), { name: 'b1', address: '10.0.0.9', port: 8081, weight: 2 });
    assert.deepEqual(config.server.trusted_proxies, ['10.0.0.0/8', '192.168.0.0/16', 'fd00::/8']);
    assert.equal(config.middleware.rate_limit.enabled, true);
    assert.equal(config.middleware.rate_limit.requests_per_minute, 60);
  });

  test('a placeholder that is part of a scalar, in flow and block style', () => {
    const tail = 'redis: {url: redis://${RHOST}:${RPORT:-6379}/${RDB}}\nserver:\n  proxy_by: gw-${REGION}-${ZONE:-a}\n';
    const config = parseConfigText(bothStyles('3000').flow + tail, { RHOST: 'cache.internal', RDB: '2', REGION: 'eu' });
    assert.equal(config.redis.url, 'redis://cache.internal:6379/2');
    assert.equal(config.server.proxy_by, 'gw-eu-a');
  });

  test('a quoted placeholder stays a string, in flow style as in block style', () => {
    for (const quoted of ['"${MYPORT}"', "'${MYPORT}'"]) {
      const { block, flow } = bothStyles(quoted);
      assert.equal(errorOf(flow, { MYPORT: '3000' }), 'load_balancing.upstreams[0].port: must be a number', quoted);
      assert.equal(errorOf(block, { MYPORT: '3000' }), 'load_balancing.upstreams[0].port: must be a number', quoted);
    }
    const text = `${bothStyles('3000').flow}server: {proxy_by: "\${A}-\${B:-x}", trusted_proxies: ['\${TP}']}\n`;
    const config = parseConfigText(text, { A: '1', TP: '10.1.2.3' });
    assert.equal(config.server.proxy_by, '1-x');
    assert.deepEqual(config.server.trusted_proxies, ['10.1.2.3']);
  });

  test('placeholders in keys expand, as in block style', () => {
    const text = `services: {\${SVC}: {upstreams: [{name: a, address: 127.0.0.1, port: 3000}]}}
routes: [{name: r, match: {path_prefix: /x, headers: {\${HEADER:-x-tenant}: \${TENANT}}}, service: \${SVC}}]
`;
    const config = parseConfigText(text, { SVC: 'orders', TENANT: 'acme' });
    assert.deepEqual(Object.keys(config.services), ['orders']);
    assert.equal(config.routes[0]!.service, 'orders');
    assert.deepEqual(config.routes[0]!.match.headers, { 'x-tenant': 'acme' });
  });

  test('a missing variable is named with the same message in flow and block style', () => {
    const { block, flow } = bothStyles('${NOPE_PORT}');
    assert.equal(errorOf(flow), 'config: environment variable NOPE_PORT is not set and has no default');
    assert.equal(errorOf(flow), errorOf(block));
  });

  test('placeholders in comments are ignored, in and after flow collections', () => {
    const text = 'load_balancing:\n  upstreams: [ # ${UNSET_A}\n    {name: a, address: 127.0.0.1, port: 3000}, # ${UNSET_B:-x}\n  ] # ${UNSET_C}\n';
    assert.equal(parseConfigText(text, {}).load_balancing!.upstreams.length, 1);
  });

  test('invalid YAML is reported at its own line, placeholders before it or not', () => {
    const text = `${bothStyles('${MYPORT}').flow}server: {proxy_by: \${A:-x}, listen_port: \${P}\nadmin: {}\n`;
    assert.equal(errorOf(text, { MYPORT: '1', A: 'a', P: '2' }), 'config: invalid YAML at line 4');
  });

  test('text that looks like the parser-safe stand-in for a placeholder stays as written', () => {
    // The loader hides placeholders behind tokens of letters and digits while YAML reads the text: whatever they
    // look like, the same letters written in the file are not mistaken for one.
    for (const literal of ['pcvar0x0x', 'pcvar0x', 'pcvar1x0x', 'PCVAR0X0X']) {
      const config = parseConfigText(`${bothStyles('${MYPORT}').flow}server: {proxy_by: ${literal}}\n`, { MYPORT: '1' });
      assert.equal(config.server.proxy_by, literal);
    }
  });

  test('a placeholder whose default holds a quote, a backslash or " #" reads as YAML reads it there, as before', () => {
    const text = `${bothStyles('3000').block}server:\n  proxy_by: "\${A:-a\\tb}"\ntracing:\n  service_name: '\${H:-it''s}'\n`;
    const config = parseConfigText(text, {});
    assert.equal(config.server.proxy_by, 'a\tb');
    assert.equal(config.tracing.service_name, "it's");
  });
});

describe('a token spelled by escapes is text, not a placeholder', () => {
  test('an escape in a double-quoted value that spells the stand-in of a placeholder never expands to its variable', () => {
    for (const spelled of ['"pcvar0\\x780x"', '"\\u0070cvar0x0x"', '"pcvar\\\n    0x0x"']) {
      const text = `${bothStyles('3000').block}server:\n  proxy_by: \${NAME}\ntracing:\n  response_header: ${spelled}\n`;
      const config = parseConfigText(text, { NAME: 'edge', SECRET: 'hunter2' });
      assert.equal(config.server.proxy_by, 'edge');
      assert.equal(config.tracing.response_header, 'pcvar0x0x', spelled);
    }
  });
  test('a placeholder written twice in one value expands twice; an escaped copy beside it does not', () => {
    const text = `${bothStyles('3000').block}server:\n  proxy_by: "\${NAME}-\${NAME}-\\x70cvar0x0x"\n`;
    assert.equal(parseConfigText(text, { NAME: 'a' }).server.proxy_by, 'a-a-pcvar0x0x');
  });
});

describe('an unquoted value loses its surrounding blanks, as any plain scalar does', () => {
  test('a secret read from a file with its final newline is the secret without it', () => {
    const secret = 'x'.repeat(40);
    const text = `${bothStyles('3000').block}jwt:\n  secret: \${JWT_SECRET}\n`;
    assert.equal(parseConfigText(text, { JWT_SECRET: `${secret}\n` }).jwt.secret, secret);
    const quoted = `${bothStyles('3000').block}jwt:\n  secret: "\${JWT_SECRET}"\n`;
    assert.equal(parseConfigText(quoted, { JWT_SECRET: ` ${secret} ` }).jwt.secret, ` ${secret} `, 'a quoted value is kept as set');
  });
});

describe("a variable's value is one scalar, never YAML of its own", () => {
  const hostile = ['}, admin: {token: x}, y: {', 'first\nsecond', 'a: b', '[1, 2]', '- item', 'x # not a comment', '*alias', '&anchor x', '!!int 5', '"quoted"', ' padded '];

  test('in flow and block style, the value is the string as set, whatever YAML it would be', () => {
    for (const value of hostile) {
      // tracing.service_name: a free string (server.proxy_by, a header value, refuses the newline of one value).
      for (const text of [
        `${bothStyles('3000').block}tracing:\n  service_name: \${NAME}\n`,
        `${bothStyles('3000').flow}tracing: {service_name: \${NAME}, sample_ratio: 1}\n`,
        `${bothStyles('3000').flow}tracing: {service_name: pre-\${NAME}}\n`,
      ]) {
        const config = parseConfigText(text, { NAME: value });
        // Unquoted, so without surrounding blanks, as YAML reads any plain scalar.
        const expected = (text.includes('pre-') ? `pre-${value}` : value).trim();
        assert.equal(config.tracing.service_name, expected, JSON.stringify(value));
        assert.equal(config.admin.token, '', 'no key comes from the value');
      }
    }
  });

  test('a value that is a scalar of another type is typed; one that is not a scalar stays a string', () => {
    const { block, flow } = bothStyles('${MYPORT}');
    for (const text of [block, flow]) {
      assert.equal(upstreamOf(parseConfigText(text, { MYPORT: '0x1F' })).port, 31);
      assert.equal(errorOf(text, { MYPORT: '[3000]' }), 'load_balancing.upstreams[0].port: must be a number');
      assert.equal(errorOf(text, { MYPORT: '3000 # x' }), 'load_balancing.upstreams[0].port: must be a number');
      assert.equal(errorOf(text, { MYPORT: '3000}, {name: b' }), 'load_balancing.upstreams[0].port: must be a number');
    }
  });
});
