// Which client is this, behind a trusted proxy (D2): X-Forwarded-For hops with ports, RFC 7239 Forwarded `for=`
// (when there is no X-Forwarded-For) and X-Real-IP (when there is neither) name the client; before, anything but a
// bare-IP X-Forwarded-For keyed every client as the proxy, so one client drained everyone's bucket and an attacker
// could lock an account's owner out of login. An untrusted peer's headers are still ignored.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { authConfig, PASSWORD, behindTrustedProxy, register, runId } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

/** Trusted proxy 127.0.0.1; 1 token a minute, so nothing refills during a test. */
const gateway = (burst: number, middleware: Record<string, unknown> = {}): Promise<InProcessGateway> =>
  behindTrustedProxy(backend.port, burst, {}, middleware);

/** Status and RateLimit-Remaining of a GET sent from `localAddress` (127.0.0.1: the trusted proxy). */
function get(gw: InProcessGateway, headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<[number, string | undefined]> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.url}/r`, { agent: false, localAddress, headers: { ...headers, connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve([res.statusCode ?? 0, res.headers['ratelimit-remaining'] as string | undefined]));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function each(gw: InProcessGateway, requests: readonly Record<string, string>[]): Promise<[number, string | undefined][]> {
  const out: [number, string | undefined][] = [];
  for (const headers of requests) out.push(await get(gw, headers));
  return out;
}

test('X-Forwarded-For hops with a port name the client, IPv4 and bracketed IPv6', async () => {
  const gw = await gateway(2);
  // One client, with and without its port: one bucket.
  assert.deepEqual(
    await each(gw, [{ 'x-forwarded-for': '198.51.100.1:5678' }, { 'x-forwarded-for': '198.51.100.1' }, { 'x-forwarded-for': '198.51.100.1:80' }]),
    [[200, '1'], [200, '0'], [429, '0']],
  );
  // Another client, bracketed IPv6 with a port, and one forged hop on the left: a full bucket of its own.
  assert.deepEqual(await each(gw, [{ 'x-forwarded-for': '6.6.6.6, [2001:db8::1]:443' }, { 'x-forwarded-for': '2001:db8::2' }]), [[200, '1'], [200, '0']]);
  // The proxy's own address was never spent.
  assert.deepEqual(await each(gw, [{}]), [[200, '1']]);
});

test('without X-Forwarded-For, Forwarded for= names the client, in every form RFC 7239 allows', async () => {
  const gw = await gateway(4);
  // One client: token, quoted with a port, parameter name in capitals, and the same client by X-Forwarded-For.
  assert.deepEqual(
    await each(gw, [
      { forwarded: 'for=198.51.100.2' },
      { forwarded: 'for="198.51.100.2:4711";proto=https;by=127.0.0.1' },
      { forwarded: 'For=198.51.100.2' },
      { 'x-forwarded-for': '198.51.100.2' },
      { forwarded: 'for=6.6.6.6, for=198.51.100.2' }, // the client's own element on the left is not believed
    ]),
    [[200, '3'], [200, '2'], [200, '1'], [200, '0'], [429, '0']],
  );
  // Bracketed IPv6 with a port, quoted: another client.
  assert.deepEqual(await each(gw, [{ forwarded: 'for="[2001:db8:cafe::17]:4711"' }]), [[200, '3']]);
  // Obfuscated and unknown clients are no address: they are keyed as the peer, the proxy itself.
  assert.deepEqual(
    await each(gw, [{ forwarded: 'for=_hidden' }, { forwarded: 'for=unknown' }, { forwarded: 'for="_x:_y"' }, {}]),
    [[200, '3'], [200, '2'], [200, '1'], [200, '0']],
  );
});

test('Forwarded and X-Real-IP are believed from a trusted proxy, never from another peer', async () => {
  const gw = await gateway(2);
  assert.deepEqual(await each(gw, [{ 'x-real-ip': '198.51.100.4' }, { 'x-real-ip': '198.51.100.4:5000' }]), [[200, '1'], [200, '0']]);
  assert.deepEqual(await each(gw, [{ 'x-real-ip': '[2001:db8::4]:80' }]), [[200, '1']], 'another client');
  // 127.0.0.2 is no trusted proxy: whatever it claims, it is keyed as itself.
  const claims: Record<string, string>[] = [{ 'x-real-ip': '198.51.100.9' }, { forwarded: 'for=198.51.100.9' }, { 'x-forwarded-for': '198.51.100.9' }];
  const untrusted = [];
  for (const headers of claims) untrusted.push(await get(gw, headers, '127.0.0.2'));
  assert.deepEqual(untrusted, [[200, '1'], [200, '0'], [429, '0']]);
  assert.deepEqual(await each(gw, [{ 'x-real-ip': '198.51.100.9' }]), [[200, '1']], 'the client it named is untouched');
});

test('an attacker behind the proxy cannot lock the owner out of login (per email + address bucket)', async () => {
  const gw = await gateway(10, { auth: authConfig() });
  const owner = await register(client, gw.url, `owner@forwarded-${runId()}.example`);
  const login = (password: string, headers: Record<string, string>) =>
    client.postJson(`${gw.url}/auth/login`, { email: owner.email, password }, headers);

  // The attacker guesses until its email + address bucket refuses it.
  const attacker = { 'x-real-ip': '10.6.6.6' };
  const guesses: number[] = [];
  for (let i = 0; i < 7; i++) guesses.push((await login('wrong password!', attacker)).status);
  assert.equal(guesses.at(-1), 429, `the attacker is limited: ${guesses.join(' ')}`);
  assert.ok(guesses.includes(401), 'the first guesses were checked');

  // The owner, from another address, by X-Real-IP or by Forwarded, logs in.
  assert.equal((await login(PASSWORD, { 'x-real-ip': '10.7.7.7' })).status, 200);
  assert.equal((await login(PASSWORD, { forwarded: 'for="10.7.7.8:51234"' })).status, 200);
  assert.equal((await login('wrong password!', attacker)).status, 429, 'and the attacker still is limited');
});
