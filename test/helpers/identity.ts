// Shared pieces of the identity suites: the admin client (token header), and the CLI run with stdin.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestClient, TestResponse } from './http.js';
import { childExit } from './child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The admin token the suites configure. */
export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef';

/** Calls the admin API with the token. */
export function adminApi(client: TestClient, adminUrl: string, token = ADMIN_TOKEN) {
  const auth = { authorization: `Bearer ${token}` };
  return {
    get: (path: string): Promise<TestResponse> => client.request(`${adminUrl}${path}`, { headers: auth }),
    post: (path: string, body?: unknown): Promise<TestResponse> =>
      body === undefined
        ? client.request(`${adminUrl}${path}`, { method: 'POST', headers: auth })
        : client.postJson(`${adminUrl}${path}`, body, auth),
    delete: (path: string): Promise<TestResponse> => client.request(`${adminUrl}${path}`, { method: 'DELETE', headers: auth }),
  };
}

/** What a CLI run produced. `auditAt` is the time of its last `admin_action` line (ms), when there was one. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly auditAt: number | undefined;
}

/**
 * Runs `portcullis <args>` as a separate process, writing `stdin` (then closing it). `stdin` may be bytes: input
 * that is not UTF-8 cannot be written as a string.
 */
export function runPortcullis(args: readonly string[], options: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.stdin.end(options.stdin ?? '');
    void childExit(child).then(({ code }) => {
      let auditAt: number | undefined;
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; time?: number };
        if (entry.msg === 'admin_action') auditAt = entry.time;
      }
      resolve({ code, stdout, stderr, auditAt });
    });
  });
}
