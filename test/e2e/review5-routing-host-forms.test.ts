// `match.hosts` written as clients send them: a fully qualified name with its trailing dot (`api.example.com.`) and a
// bracketed IPv6 literal (`[::1]`) were refused as config errors, though the gateway accepts `Host: api.example.com.`
// and `Host: [::1]:8080` and routes by the host without port or trailing dot. Now such entries load, match over real
// sockets, and `portcullis routes --match` agrees; entries that can never match are still refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { runCli, startInProcess, writeConfig, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { configErrorOf } from '../helpers/config-error.js';
import { parseConfigText } from '../../src/config/load.js';

function routesFor(dotted: number, ipv6: number, fallback: number): ConfigInput {
  const svc = (name: string, port: number) => ({ upstreams: [{ name, address: '127.0.0.1', port }] });
  return {
    services: { dotted: svc('dotted', dotted), ipv6: svc('ipv6', ipv6), fallback: svc('fallback', fallback) },
    routes: [
      { name: 'catch-all', match: { path_prefix: '/' }, service: 'fallback' },
      { name: 'fqdn', match: { hosts: ['API.example.com.'] }, service: 'dotted' },
      { name: 'wild-fqdn', match: { hosts: ['*.apps.example.com.'] }, service: 'dotted' },
      { name: 'loopback-v6', match: { hosts: ['[::1]'] }, service: 'ipv6' },
    ],
  };
}

describe('match.hosts with a trailing dot or an IPv6 literal', () => {
  let dotted: TestBackend;
  let ipv6: TestBackend;
  let fallback: TestBackend;
  let gw: InProcessGateway;

  before(async () => {
    [dotted, ipv6, fallback] = await Promise.all([startBackend('dotted'), startBackend('ipv6'), startBackend('fallback')]);
    gw = await startInProcess(routesFor(dotted.port, ipv6.port, fallback.port));
  });
  after(async () => {
    await gw?.close();
    await Promise.all([dotted?.stop(), ipv6?.stop(), fallback?.stop()]);
  });

  async function backendFor(host: string): Promise<string> {
    const res = await rawRequest(gw.gateway.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 200, `Host: ${host}`);
    return (JSON.parse(res.body) as EchoBody).backend;
  }

  test('a trailing-dot entry matches the name with or without the dot, in any case and port', async () => {
    assert.equal(await backendFor('api.example.com'), 'dotted');
    assert.equal(await backendFor('api.example.com.'), 'dotted');
    assert.equal(await backendFor('Api.Example.com.:8443'), 'dotted');
    assert.equal(await backendFor('a.apps.example.com.'), 'dotted');
    assert.equal(await backendFor('api.example.org'), 'fallback');
  });

  test('[::1] matches Host: [::1] with or without a port', async () => {
    assert.equal(await backendFor('[::1]'), 'ipv6');
    assert.equal(await backendFor('[::1]:8080'), 'ipv6');
    assert.equal(await backendFor('[::2]:8080'), 'fallback');
  });

  test('portcullis routes --match agrees', async () => {
    const file = writeConfig(routesFor(dotted.port, ipv6.port, fallback.port));
    try {
      const v6 = await runCli(['routes', '--config', file, '--match', 'GET http://[::1]:8080/x']);
      assert.equal(v6.code, 0, v6.stderr);
      assert.match(v6.stdout, /route: loopback-v6 \(host \[::1\]/);
      const fqdn = await runCli(['routes', '--config', file, '--match', 'GET https://api.example.com./x']);
      assert.equal(fqdn.code, 0, fqdn.stderr);
      assert.match(fqdn.stdout, /route: fqdn \(host api\.example\.com,/);
    } finally {
      rmSync(dirname(file), { recursive: true, force: true });
    }
  });
});

describe('match.hosts entries that can never match are still refused', () => {
  const configWith = (host: string): string =>
    `services:\n  s:\n    upstreams: [{ name: a, address: 127.0.0.1, port: 1 }]\nroutes:\n  - name: r\n    match: { hosts: ['${host}'] }\n    service: s\n`;

  test('an IPv6 literal in a spelling requests may not carry names the one they carry', () => {
    assert.match(configErrorOf(configWith('[0:0::1]')), /routes\[0\]\.match\.hosts\[0\]: .*write \[::1\]/);
    assert.match(configErrorOf(configWith('[fe80::1%25eth0]')), /routes\[0\]\.match\.hosts\[0\]: .*invalid IPv6 literal/);
  });

  test('a port, a numeric host that is no dotted quad, an empty label', () => {
    assert.match(configErrorOf(configWith('[::1]:8080')), /match\.hosts\[0\]: .*without a port/);
    assert.match(configErrorOf(configWith('api.example.com:8080')), /match\.hosts\[0\]: .*without a port/);
    assert.match(configErrorOf(configWith('127.1')), /match\.hosts\[0\]: .*could never match/);
    assert.match(configErrorOf(configWith('api..example.com')), /match\.hosts\[0\]: must be a host name/);
    assert.match(configErrorOf(configWith('api.example.com..')), /match\.hosts\[0\]: must be a host name/);
  });

  test('a wildcard over the tail of IPv4 addresses (it matched every address ending so: Host 127.0.0.1 for *.0.0.1)', () => {
    for (const host of ['*.0.0.1', '*.1', '*.example.0x7f', '*.168.1.']) {
      assert.match(configErrorOf(configWith(host)), /match\.hosts\[0\]: .*ending in a number is an IPv4 address's tail/, host);
    }
    for (const host of ['*.example.com', '*.v2.example.com', '*.1password.com', '*.s3']) {
      assert.doesNotThrow(() => parseConfigText(configWith(host)), host);
    }
  });
});
