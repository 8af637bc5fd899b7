// Ctrl-C at the CLI's password prompt (a terminal: the password is typed without echo, in raw mode) ends the command
// as Unix tools end on an interrupt: exit 130, nothing printed but the newline that ends the prompt's line, the
// terminal back in its cooked, echoing mode, nothing created. Before, it printed "portcullis: Error: aborted" and
// exited 1, as a failure would. A SIGINT sent to the process while it prompts (kill -INT) does the same.
// The prompt needs a terminal: python3's pty module gives the command one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { identityCliStore } from '../helpers/identity.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * Runs argv on a pseudo-terminal; once the prompt is shown and the terminal is in raw mode, types `typed` (or sends
 * SIGINT), then reads to the end. Prints what happened as JSON: the exit code or signal, what the command wrote after
 * the prompt, and whether the terminal echoes and reads lines again.
 */
const PTY_DRIVER = String.raw`
import json, os, pty, select, signal, sys, termios, time
argv, typed, send_signal = json.loads(sys.argv[1]), sys.argv[2].encode(), sys.argv[3] == 'signal'
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b''
def read(until, seconds):
    global out
    end = time.time() + seconds
    while time.time() < end and not until(out):
        if select.select([fd], [], [], 0.05)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
read(lambda o: b'New password: ' in o, 60)
prompted = b'New password: ' in out
end = time.time() + 10
while time.time() < end and termios.tcgetattr(fd)[3] & termios.ICANON:
    time.sleep(0.02)
raw = not termios.tcgetattr(fd)[3] & termios.ICANON
after_prompt = len(out)
if send_signal:
    os.kill(pid, signal.SIGINT)
else:
    os.write(fd, typed)
read(lambda o: False, 30)
_, status = os.waitpid(pid, 0)
lflag = termios.tcgetattr(fd)[3]
print(json.dumps({
    'prompted': prompted, 'raw': raw,
    'code': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    'signal': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    'after': out[after_prompt:].decode('utf-8', 'replace'),
    'echo': bool(lflag & termios.ECHO), 'icanon': bool(lflag & termios.ICANON),
}))
`;

interface PtyRun {
  prompted: boolean;
  raw: boolean;
  code: number | null;
  signal: number | null;
  after: string;
  echo: boolean;
  icanon: boolean;
}

async function onTerminal(args: readonly string[], env: NodeJS.ProcessEnv, typed: string, how: 'keys' | 'signal' = 'keys'): Promise<PtyRun> {
  const argv = [process.execPath, join(ROOT, 'bin/portcullis.js'), ...args];
  const child = spawn('python3', ['-c', PTY_DRIVER, JSON.stringify(argv), typed, how], { cwd: ROOT, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const { code } = await childExit(child);
  assert.equal(code, 0, `the pty driver failed: ${stderr}`);
  return JSON.parse(stdout) as PtyRun;
}

describe('Ctrl-C at the password prompt', () => {
  const store = identityCliStore();
  const run = (args: readonly string[], typed: string, how?: 'keys' | 'signal') =>
    onTerminal([...args, '--config', store.configFile], { PORTCULLIS_DATA_DIR: store.dataDir }, typed, how);

  for (const [how, typed] of [
    ['keys', 'half-typed\u0003'],
    ['signal', ''],
  ] as const) {
    test(`users create: exit 130, only a newline, the terminal cooked again, no user (${how === 'keys' ? 'Ctrl-C typed' : 'kill -INT'})`, async () => {
      const result = await run(['users', 'create', `interrupted-${how}@example.com`], typed, how);
      assert.ok(result.prompted && result.raw, JSON.stringify(result));
      assert.equal(result.code, 130, JSON.stringify(result));
      assert.match(result.after, /^\r?\n$/, JSON.stringify(result.after));
      assert.ok(result.echo && result.icanon, 'the terminal echoes and reads lines again');
      const shown = await store.cli(['users', 'show', `interrupted-${how}@example.com`]);
      assert.equal(shown.code, 1, 'no user was created');
    });
  }

  test('a password typed and Enter still creates the user', async () => {
    const result = await run(['users', 'create', 'typed@example.com'], 'a-long-password\r');
    assert.equal(result.code, 0, JSON.stringify(result));
    assert.ok(result.echo && result.icanon);
    assert.ok(!result.after.includes('a-long-password'), 'the password is not echoed');
    const shown = await store.cli(['users', 'show', 'typed@example.com']);
    assert.equal(shown.code, 0, shown.stderr);
  });
});
