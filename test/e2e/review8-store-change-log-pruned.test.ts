// The change poller checks, each poll, that the log still holds the change it read last (a database restored from an
// earlier dump starts its numbers again below it: review8-store-pg-change-log-restored). The janitor's pruning removes
// that change too once it is past its retention: that is no replaced log, so no warning, and the changes written
// afterwards are still read; the dashboard's recent actions stay as they were. On the real SQLite store.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangePoller } from '../../src/identity/change-poller.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { openSqliteUserStore } from '../../src/store/sqlite.js';

const dataDir = mkdtempSync(join(tmpdir(), 'pc-review8-pruned-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('a last-read change pruned past its retention is no replaced log: no warning, later changes still read', async () => {
  const store = openSqliteUserStore({ dataDir });
  await store.migrate();
  const kv = createMemoryKvStore();
  const warnings: Array<{ msg: string; fields: unknown }> = [];
  let clock = Date.now();
  const poller = new ChangePoller({
    store,
    kv,
    revocationTtlMs: 60_000,
    onApiKeyRevoked: () => undefined,
    logger: { warn: (fields: unknown, msg?: string) => void warnings.push({ msg: String(msg), fields }), info: () => undefined },
    now: () => clock,
  });
  try {
    const first = await store.createUser({ id: randomUUID(), email: `pruned-${randomUUID()}@example.com`, passwordHash: 'x' });
    const second = await store.createUser({ id: randomUUID(), email: `pruned-${randomUUID()}@example.com`, passwordHash: 'x' });
    await poller.start();
    assert.ok(await store.logoutUser(first.id, { actor: 'cli', action: 'logout', targetId: first.id, at: new Date() }));
    await poller.poll();
    assert.deepEqual(poller.recent.map((c) => c.targetId), [first.id]);

    // An hour later (past the poller's 10-minute window) the janitor prunes everything older than a minute ago.
    clock += 60 * 60_000;
    await store.pruneChanges(new Date(clock - 60_000));
    await poller.poll();
    assert.deepEqual(warnings.filter((w) => w.msg.startsWith('identity change log')), [], 'no warning for a pruned change');

    assert.ok(await store.logoutUser(second.id, { actor: 'cli', action: 'logout', targetId: second.id, at: new Date(clock) }));
    await poller.poll();
    // Read, and the dashboard's list keeps what it held before the prune (no duplicate from the re-read).
    assert.deepEqual(poller.recent.map((c) => c.targetId), [second.id, first.id]);
    assert.deepEqual(warnings, []);
  } finally {
    await poller.stop();
    await kv.close();
    await store.close();
  }
});
