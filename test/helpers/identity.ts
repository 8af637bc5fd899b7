// Shared pieces of the identity suites: the admin client (token header), and the CLI run with stdin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { after, before } from 'node:test';
import { FAST_ARGON2, TEST_SECRET, startAuthStack, type AuthStack } from './auth-gateway.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from './gateway.js';
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


/**
 * Registers before/after hooks in the calling describe() (or file) that start and stop an auth stack with the admin
 * listener on and `admin.token` ADMIN_TOKEN; `stack` is set once the before hook has run, and `admin()` calls its
 * admin API with the token.
 */
export function adminStackHooks(): { readonly stack: AuthStack; admin(): ReturnType<typeof adminApi> } {
  const state = {
    stack: undefined as unknown as AuthStack,
    admin: () => adminApi(state.stack.client, state.stack.gw.adminUrl!),
  };
  before(async () => {
    state.stack = await startAuthStack({ admin: { token: ADMIN_TOKEN } });
  });
  after(async () => {
    await (state.stack as AuthStack | undefined)?.close();
  });
  return state;
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

/** The CLI against one SQLite user store of its own (see identityCliStore). */
export interface IdentityCliStore {
  /** Runs `portcullis <args> --config <the store's config>`, with `stdin` if given. */
  cli(args: readonly string[], stdin?: string): Promise<CliResult>;
  readonly dataDir: string;
  /** The config file (auth on, fast argon2), written by the before hook. */
  readonly configFile: string;
}

/**
 * Registers hooks in the calling describe(): before, a config with auth on and a fresh SQLite store migrated in a data
 * dir of its own, which the CLI suites run their commands against; after, the data dir removed.
 */
export function identityCliStore(): IdentityCliStore {
  const dataDir = tempDataDir();
  const config = {
    load_balancing: { upstreams: upstreams([1]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  };
  const store = {
    dataDir,
    configFile: '',
    cli: (args: readonly string[], stdin?: string) =>
      runPortcullis([...args, '--config', store.configFile], { ...(stdin === undefined ? {} : { stdin }), env: { PORTCULLIS_DATA_DIR: dataDir } }),
  };
  before(async () => {
    store.configFile = writeConfig(config);
    const migrated = await store.cli(['migrate']);
    assert.equal(migrated.code, 0, migrated.stderr);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  return store;
}

/**
 * A gateway on the PostgreSQL database at `url` (pool of 4) with auth and API keys on, every path routed to
 * `backendPort`, the admin token set and no rate limits: for API-key tests against a slow or locked store.
 */
export function startApiKeyGateway(url: string, backendPort: number): Promise<InProcessGateway> {
  return startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backendPort }] } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'app' }],
    database: { url, pool_size: 4 },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
    admin: { token: ADMIN_TOKEN },
  });
}
