// Logins hash passwords off the event loop: while several run, proxied requests through the same gateway keep flowing.
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { bearer, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

/** The recommended argon2 cost (19 MiB, 2 passes) made a little heavier, so the logins clearly take a while. */
const ARGON2 = { memory_kib: 32_768, iterations: 3, parallelism: 1 };
const LOGINS = 8;

let stack: AuthStack;
before(async () => {
  stack = await startAuthStack({ auth: { argon2: ARGON2 } });
});
after(() => stack.close());

/**
 * The hashing child runs at nice 19: on a machine whose cores are taken by other work it gets a sliver of CPU, and a
 * register or a login can take far longer than the client's default 15 s (measured at load 15: over 15 s for one
 * register). What is measured here is the proxied GETs, relative to the logins' own duration, so the hashing requests
 * get a bound of minutes.
 */
const HASHING_TIMEOUT_MS = 300_000;

test(`proxied GETs keep answering quickly while ${LOGINS} logins run concurrently`, async (t) => {
  const email = `u-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const password = 'Pw-load-0123456789';
  const registered = await stack.client.request(`${stack.url}/auth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }), timeoutMs: HASHING_TIMEOUT_MS,
  });
  assert.equal(registered.status, 201, registered.text);
  const user = { ...registered.json<{ access_token: string; email: string }>(), password };
  const headers = bearer(user.access_token);
  // Warm the proxy path (connection pools) so the first sample measures the gateway, not a TCP handshake.
  for (let i = 0; i < 3; i++) assert.equal((await stack.client.request(`${stack.url}/warm`, { headers })).status, 200);

  let loginsDone = false;
  const loginsStarted = performance.now();
  const logins = Promise.all(
    Array.from({ length: LOGINS }, () =>
      stack.client.request(`${stack.url}/auth/login`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: user.email, password: user.password }), timeoutMs: HASHING_TIMEOUT_MS,
      }),
    ),
  )
    .then((answers) => ({ answers, elapsed: performance.now() - loginsStarted }))
    // Settled either way: a login that failed (its client timeout) must end the loop below, which otherwise sent GETs
    // for as long as the process lived (the rejection only marks the test failed).
    .finally(() => {
      loginsDone = true;
    });

  // A proxied GET every few milliseconds for as long as the logins run. Paced rather than back to back: a loop
  // that never rests keeps a core busy at normal priority, and with any other load on a two-core machine the
  // hashing child (nice 19) then gets so little CPU that the logins time out.
  const latencies: number[] = [];
  const statuses: number[] = [];
  while (!loginsDone) {
    const started = performance.now();
    const res = await stack.client.request(`${stack.url}/during?i=${latencies.length}`, { headers });
    latencies.push(performance.now() - started);
    statuses.push(res.status);
    await sleep(5);
  }
  const { answers, elapsed } = await logins;

  for (const res of answers) assert.equal(res.status, 200, res.text);
  assert.ok(statuses.every((s) => s === 200), `proxied statuses: ${statuses.join(',')}`);
  const max = Math.max(...latencies);
  const summary = `${LOGINS} logins took ${Math.round(elapsed)} ms; ${latencies.length} GETs, max ${Math.round(max)} ms`;
  const diagnostic = `${summary}; latencies: ${latencies.map(Math.round).join(' ')}`;
  // If hashing blocked the event loop, a GET would wait for at least one whole hash, and the loop above would get
  // only a handful of turns. The bounds are loose on purpose: this machine has two cores and other work on them.
  assert.ok(latencies.length >= 5, diagnostic);
  assert.ok(max < elapsed / 2, diagnostic);
  t.diagnostic(summary);
});
