// A PostgreSQL link that goes silent for every connection (a network partition: packets dropped, no RST, no FIN),
// the open ones mid-use and the new ones at connect (accepted, the startup never answered), while a gateway with auth
// and the admin API runs. Login, refresh and admin requests must answer 503 within the store's bounds (a statement's
// client-side bound, 5 s + 1 s; a connection's, 2 s, which also bounds the wait for a pooled one), not hang for the
// kernel's TCP retransmission timeout (about 15 minutes); the hung connections must not hold the pool for good; and
// the gateway must serve again on its own once the link returns. The shared PostgreSQL on 127.0.0.1:5432, a database
// of our own behind a TCP link the test silences.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { assertSafeError, register, uniqueEmail } from '../helpers/auth-gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN } from '../helpers/identity.js';
import { isolatedDatabaseBehindLink, spawnPostgresAuthGateway, type DatabaseBehindLink } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The longest a request may take while the link is silent: a statement's bound (6 s) after a pooled connection's
 * (2 s), plus room for a loaded machine. Measured here: about 6 s.
 */
const BOUND_MS = 12_000;
/** From the link's return to a login answered: a silent session's statement bound, and room. */
const RECOVERY_BOUND_MS = 15_000;

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('PostgreSQL partition', { skip: pgSkip }, () => {});
} else {
  describe('PostgreSQL partition: every connection silent, open and new', () => {
    const client = createClient({ connections: 16 });
    let stored: DatabaseBehindLink;
    let backend: TestBackend;
    let gw: GatewayProcess;

    before(async () => {
      stored = await isolatedDatabaseBehindLink();
      backend = await startBackend('echo');
      gw = await spawnPostgresAuthGateway(stored.url, backend.port, { listen_host: '127.0.0.1', listen_port: 0, token: ADMIN_TOKEN });
    });
    after(async () => {
      stored?.link.heal();
      await client.close();
      await gw?.cleanup();
      await backend?.stop();
      await stored?.close('pc-partition-');
    });

    test('login, refresh and admin answer 503 within the bound, twice over the pool size, and recover on return', async () => {
      const stack = { client, url: gw.url };
      const user = await register(stack, uniqueEmail('pc-partition'));
      const admin = adminApi(client, `http://127.0.0.1:${gw.adminPort!}`);
      // Fill the pool (4) with idle sessions: the partition finds them open.
      await Promise.all(Array.from({ length: 6 }, () => admin.get('/admin/users')));

      stored.link.partition();
      // One login and one refresh a round: the /auth/* bucket per address (burst 5) would answer more with 429.
      const requests: Array<[string, () => Promise<TestResponse>]> = [
        ['login', () => client.postJson(`${gw.url}/auth/login`, { email: user.email, password: user.password })],
        ['refresh', () => client.postJson(`${gw.url}/auth/refresh`, { refresh_token: user.refresh_token })],
        ...Array.from({ length: 6 }, (): [string, () => Promise<TestResponse>] => ['admin', () => admin.get('/admin/users')]),
      ];
      // Two rounds of twice the pool size each: the second one finds the pool as the first left it.
      for (const round of [1, 2]) {
        const started = performance.now();
        const answers = await Promise.all(
          requests.map(async ([what, send]) => {
            const res = await send();
            return { what, res, ms: performance.now() - started };
          }),
        );
        for (const { what, res, ms } of answers) {
          assert.equal(res.status, 503, `round ${round}: ${what}: ${res.text}`);
          assertSafeError(res, 503, [user.password, user.refresh_token]);
          assert.ok(ms < BOUND_MS, `round ${round}: ${what} answered after ${Math.round(ms)} ms (bound ${BOUND_MS} ms)`);
        }
        console.log(`# round ${round}: ${answers.length} answers 503, the slowest after ${Math.round(Math.max(...answers.map((a) => a.ms)))} ms`);
      }

      stored.link.heal(); // new connections reach PostgreSQL again; the silent ones stay silent
      const healedAt = performance.now();
      await waitFor(async () => (await admin.get('/admin/users')).status === 200, 'the store to answer', RECOVERY_BOUND_MS, 200);
      console.log(`# the store answered ${Math.round(performance.now() - healedAt)} ms after the link returned`);
      const login = await client.postJson(`${gw.url}/auth/login`, { email: user.email, password: user.password });
      assert.equal(login.status, 200, login.text);
      const refreshed = await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: user.refresh_token });
      assert.equal(refreshed.status, 200, refreshed.text);
      assert.equal(gw.child.exitCode, null, `the gateway exited: ${gw.stderr()}`);
    });
  });
}
