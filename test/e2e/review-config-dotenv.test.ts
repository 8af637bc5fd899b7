// `.env` as check-config (and so start and reload, which read it the same way) reads it: a comment after a value is
// not part of it, as in docker compose and dotenv; a `.env` that exists but cannot be read (a directory, a FIFO, a
// symlink to nothing) is a config error, never waited on, never taken for "no variables".
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const CONFIG = `server: {listen_host: 127.0.0.1, listen_port: \${REVIEW_PORT:-0}}
admin: {enabled: false, token: "\${REVIEW_TOKEN:-}"}
load_balancing:
  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]
`;

/** A working directory holding proxy.yaml; `dotEnv` makes its `.env` (a file's text, or a function). */
function workdir(dotEnv: string | ((path: string) => void)): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-dotenv-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'proxy.yaml'), CONFIG);
  if (typeof dotEnv === 'string') writeFileSync(join(dir, '.env'), dotEnv);
  else dotEnv(join(dir, '.env'));
  return dir;
}

/** `portcullis check-config --config proxy.yaml` in `cwd`, killed after 20 s (then `code` is null). */
function checkConfig(cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.REVIEW_PORT;
  delete env.REVIEW_TOKEN;
  delete env.PORTCULLIS_CONFIG;
  return runCli(['check-config', '--config', 'proxy.yaml'], {}, { cwd, fullEnv: env, boundMs: 20_000 });
}

test('a comment after a value in .env is not part of the value', async () => {
  // The port with its comment was the string "8081 # the proxy port": "must be a number".
  const dir = workdir('REVIEW_PORT=8081 # the proxy port\nREVIEW_TOKEN="0123456789abcdef" # openssl rand -hex 8\n');
  const result = await checkConfig(dir);
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
});

test('a .env that is a directory, a FIFO or a symlink to nothing is a config error, at once', async () => {
  for (const [what, make] of [
    ['a directory', (path: string) => mkdirSync(path)],
    ['a FIFO', (path: string) => execFileSync('mkfifo', [path])],
  ] as const) {
    const result = await checkConfig(workdir(make));
    assert.equal(result.stderr, 'portcullis: config error: cannot read .env (not a regular file)\n', what);
    assert.equal(result.code, 1, what);
  }
  const dangling = await checkConfig(workdir((path) => symlinkSync('/nonexistent/portcullis.env', path)));
  assert.equal(dangling.stderr, 'portcullis: config error: cannot read .env (ENOENT: a symlink to nothing)\n');
  assert.equal(dangling.code, 1);
});

test('a variable given twice in .env takes its last line, as a shell, docker compose and dotenv do', async () => {
  // `echo REVIEW_TOKEN=... >> .env` to replace a value: the first line won, so the old (here too short) token stayed.
  const dir = workdir('REVIEW_TOKEN=short\nREVIEW_TOKEN=0123456789abcdef\n');
  const result = await checkConfig(dir);
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
});
