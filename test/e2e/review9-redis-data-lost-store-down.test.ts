// Redis loses its data while the user store does not answer (a machine restart that takes both down, PostgreSQL
// slower to come back): the change poller found the loss (its marker gone: it writes the marker again at once and logs
// Revocations Lost), then failed to read the change log, and forgot the loss: the next poll found the marker in place
// and wrote nothing, so every logged-out access token was accepted again until it expired, although the log held the
// revocations once PostgreSQL answered. The loss is now kept until the window has been read again. Our own
// redis-server on a free port; an isolated PostgreSQL database behind a link the test cuts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { bearer } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { isolatedDatabaseBehindLink } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { startRedisErrorStack } from '../helpers/redis-error-stack.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const pgSkip = await requirePostgres();
const skip = !installed ? 'redis-server is not installed; skipped (set CI=true to make this a failure)' : pgSkip;

test('revocations lost with Redis while the user store is down are written again once it answers', { skip }, async () => {
  const pg = await isolatedDatabaseBehindLink();
  after(() => pg.close('review9-lost-down-none-'));
  const stack = await startRedisErrorStack('data-lost-store-down', { database: { url: pg.url, pool_size: 4 } });
  const me = async (token: string) => (await stack.client.request(`${stack.gw.url}/me`, { headers: bearer(token) })).status;
  const token = stack.account.access_token;
  const out = await stack.client.request(`${stack.gw.url}/auth/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(token) },
    body: JSON.stringify({ refresh_token: stack.account.refresh_token }),
  });
  assert.equal(out.status, 200, out.text);
  assert.equal(await me(token), 401, 'revoked before the loss');
  // Let the poller read the logout first (it writes each change it reads once more), so only the loss can restore it.
  await new Promise((r) => setTimeout(r, 2_500));
  const lostLines = () => stack.gw.logs.filter((l) => l.msg === 'Revocations Lost').length;

  await pg.link.cut();
  try {
    await stack.admin.sendCommand(['FLUSHALL']);
    await waitFor('the loss to be found', async () => lostLines() === 1, 6_000, 50);
    // That poll, and the one after, cannot read the log.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(await me(token), 200, 'accepted while the revocation is gone (what the test mends)');
  } finally {
    await pg.link.restore();
  }
  await waitFor('the logged-out token refused again once the user store answers', async () => (await me(token)) === 401, 8_000, 100);
  assert.equal(lostLines(), 1, 'one loss, one line');
});
