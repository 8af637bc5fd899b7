// The review-fix contract (identity-review.contract.ts) against SQLite, in a temporary data dir removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openSqliteUserStore } from '../../src/store/sqlite.js';
import { identityReviewContract } from './identity-review.contract.js';

const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-review-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

identityReviewContract('sqlite', async () => openSqliteUserStore({ dataDir }));
