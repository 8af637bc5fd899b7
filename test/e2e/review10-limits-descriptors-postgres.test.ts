// Held, checked: with the gateway's descriptors used up (RLIMIT_NOFILE), user-store reads that need a new PostgreSQL
// connection fail at connect (EMFILE) and are answered 503 store_unavailable; a read that finds
// an idle pooled connection is served; no crash, and logins work again once the flood is gone. Real PostgreSQL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DATABASE_URL } from '../helpers/services.js';
import { connectedSocket, fillDescriptors, openDescriptors, postOn, spawnLimitedAuthGateway } from '../helpers/descriptor-limit.js';
import { waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('descriptors used up: PostgreSQL reads that need a new connection are 503 store_unavailable, no crash', async () => {
  const gw = await spawnLimitedAuthGateway(NOFILE, cleanups, { database: { url: DATABASE_URL } });
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 8; i++) sockets.push(await connectedSocket(gw.port, cleanups));
  const user = { email: `fd-pg-${process.pid}-${Date.now()}@example.com`, password: 'SecurePass123!' };
  // Starts the hashing process too, so that the reads below are what meets EMFILE.
  assert.equal((await postOn(sockets[0]!, '/auth/register', user)).status, 201);

  const flood = await fillDescriptors(gw.port, gw.child.pid!, NOFILE);
  cleanups.push(() => flood.release());
  const answers = await Promise.all(sockets.map((s, i) => postOn(s, '/auth/login', { email: `nobody-${i}@example.com`, password: 'x-SecurePass123!' })));
  const statuses = answers.map((a) => a.status);
  assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(','));
  const refused = answers.filter((a) => a.status === 503);
  assert.ok(refused.length > 0, 'some reads needed a new connection');
  for (const a of refused) assert.equal(JSON.parse(a.body).code, 'store_unavailable');
  assert.equal(gw.child.exitCode, null);
  assert.ok(!gw.logs.some((l) => l.msg === 'Uncaught Exception'));

  flood.release();
  await waitFor(() => openDescriptors(gw.child.pid!) < NOFILE / 2, 'the flood gone', 10_000);
  const fresh = await connectedSocket(gw.port, cleanups);
  assert.equal((await postOn(fresh, '/auth/login', user)).status, 200);
});
