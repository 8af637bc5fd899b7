// SessionJanitor against a real SQLite store: runs delete expired sessions, failures are survived, stop() is clean.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SessionJanitor } from './janitor.js';
import { openSqliteUserStore } from './sqlite.js';

test('the janitor deletes expired sessions on its timer, survives a failing store, and stops', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-janitor-'));
  const store = openSqliteUserStore({ dataDir });
  try {
    await store.migrate();
    const user = await store.createUser({ id: randomUUID(), email: 'j@example.com', passwordHash: 'x' });
    const token = (hash: string, expiresAt: Date) =>
      store.createRefreshToken({ id: randomUUID(), userId: user.id, familyId: randomUUID(), tokenHash: hash, expiresAt });
    await token('expired', new Date(Date.now() - 1000));
    await token('live', new Date(Date.now() + 3_600_000));
    const janitor = new SessionJanitor({ store, intervalMs: 20, logger: pino({ level: 'silent' }) });
    janitor.start();
    const deadline = Date.now() + 5000;
    while ((await store.revokeFamilyOf('expired', new Date())) !== undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await janitor.stop();
    assert.equal(await store.revokeFamilyOf('expired', new Date()), undefined, 'expired session removed');
    assert.deepEqual(await store.revokeFamilyOf('live', new Date()), { userId: user.id }, 'live session kept');
    await store.close();
    // A store that fails: the run resolves with 0 instead of throwing.
    assert.equal(await new SessionJanitor({ store, intervalMs: 1000, logger: pino({ level: 'silent' }) }).runOnce(), 0);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('change-log rows are kept for the retention it is given (a token lifetime past a week), else a week', async () => {
  const cutoffs: number[] = [];
  const store = { deleteExpired: async () => 0, pruneChanges: async (before: Date) => { cutoffs.push(before.getTime()); return 0; } };
  const now = () => 1_800_000_000_000;
  const logger = pino({ level: 'silent' });
  await new SessionJanitor({ store, intervalMs: 1000, logger, now }).runOnce();
  await new SessionJanitor({ store, intervalMs: 1000, logger, now, changeRetentionMs: 40 * 86_400_000 }).runOnce();
  assert.deepEqual(cutoffs, [now() - 7 * 86_400_000, now() - 40 * 86_400_000]);
});

test('single-session logout rows are pruned after the token retention it is given, else with the others', async () => {
  const cutoffs: Array<[number, number | undefined]> = [];
  const store = {
    deleteExpired: async () => 0,
    pruneChanges: async (before: Date, tokens?: Date) => {
      cutoffs.push([before.getTime(), tokens?.getTime()]);
      return 0;
    },
  };
  const now = () => 1_800_000_000_000;
  const logger = pino({ level: 'silent' });
  await new SessionJanitor({ store, intervalMs: 1000, logger, now, tokenRevocationRetentionMs: 905_000 }).runOnce();
  await new SessionJanitor({ store, intervalMs: 1000, logger, now }).runOnce();
  assert.deepEqual(cutoffs, [
    [now() - 7 * 86_400_000, now() - 905_000],
    [now() - 7 * 86_400_000, now() - 7 * 86_400_000],
  ]);
});
