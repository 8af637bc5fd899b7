// check-config's header reader (src/store/sqlite-header.ts) on a SQLite file being written right now: a checkpoint
// writes page 1 (its new page count) first, then the pages past the old end (or cuts the file after a VACUUM), then
// empties the -wal. The reader took the file's size before the header and the -wal after it, so a checkpoint between
// the two made a healthy store "corrupt (SQLITE_CORRUPT): shorter than its header says": a check-config beside a
// gateway that was checkpointing or stopping failed a good config. Now the header is read before and after the size
// and the -wal, and judged only when it held still. A real writer process (better-sqlite3) grows, vacuums and
// checkpoints (TRUNCATE) one file for 8 s while this test reads its header as fast as it can.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteHeaderProblem } from '../../src/store/sqlite-header.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;

describe("check-config's header reader on a SQLite file being checkpointed", () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-header-race-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('never calls the healthy file corrupt', async () => {
    const file = join(dir, 'portcullis.db');
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const D = require(${JSON.stringify(join(ROOT, 'node_modules/better-sqlite3'))});
         const db = new D(${JSON.stringify(file)});
         db.pragma('journal_mode = WAL');
         db.pragma('wal_autocheckpoint = 0');
         db.exec('CREATE TABLE t (x)');
         const insert = db.prepare('INSERT INTO t VALUES (?)');
         const clear = db.prepare('DELETE FROM t');
         const end = Date.now() + 8000;
         for (let i = 1; Date.now() < end; i++) {
           insert.run('z'.repeat(3000));
           if (i % 5 === 0) db.pragma('wal_checkpoint(TRUNCATE)');
           if (i % 300 === 0) { clear.run(); db.exec('VACUUM'); db.pragma('wal_checkpoint(TRUNCATE)'); }
         }
         db.close();`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    writer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let running = true;
    const exited = childExit(writer).then((exit) => {
      running = false;
      return exit;
    });
    const problems = new Map<string, number>();
    let reads = 0;
    while (running) {
      for (let k = 0; k < 200; k++, reads++) {
        const problem = sqliteHeaderProblem(file, 6);
        if (problem !== undefined) problems.set(problem, (problems.get(problem) ?? 0) + 1);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await exited, { code: 0, signal: null }, stderr);
    assert.ok(reads > 1000, `read ${reads} times`);
    // Before the fix: { 'is corrupt (SQLITE_CORRUPT): shorter than its header says' => 29 } in one run.
    assert.deepEqual([...problems], [], `${reads} reads`);
  });
});
