// What the CLI prints back of what it was given (an argument, an option, a config path, a key of the config file)
// reaches the operator's terminal, where ESC and CSI (U+009B) start escape sequences: a colour change, a cleared
// screen, an OSC 8 link whose text hides its target; and a carriage return overwrites the line. The "not found"
// refusals escaped their target (commands/output.ts shownArgument), but the usage refusals (an unknown command, option
// or verb) and config errors printed the text raw. Each line the CLI writes from a message now shows every C0 and
// C1 control and DEL as \xNN. The family's members: each of CONTROLS, through each way text is printed back.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityCliStore, runPortcullis } from '../helpers/identity.js';

/** What reaches a terminal as anything but text: C0 (the line's own \n aside), DEL and C1. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

/** Each a member of the family, with what it must read as once escaped. */
const CONTROLS: ReadonlyArray<readonly [raw: string, shown: string]> = [
  ['\u001b[31mred', '\\x1b[31mred'], // CSI by ESC: colour
  ['\u001b]8;;http://evil.example/\u0007click\u001b]8;;\u0007', '\\x1b]8;;http://evil.example/\\x07click\\x1b]8;;\\x07'], // OSC 8 link
  ['ok\rportcullis: done', 'ok\\x0dportcullis: done'], // carriage return: overwrites the line
  ['a\nportcullis: config ok', 'a\\x0aportcullis: config ok'], // newline: a forged line of its own
  ['\u009b2J', '\\x9b2J'], // the C1 CSI: clears the screen
  ['x\u007fy', 'x\\x7fy'], // DEL
];

/**
 * Every member at once: each way text is printed back is run once, on one argument holding them all (escaping is per
 * character, so the line must show each member escaped, and no raw control may remain), not once per member: a
 * process per member and way was some 40 CLI runs.
 */
const ALL: readonly [raw: string, shown: string] = [CONTROLS.map(([raw]) => raw).join(''), CONTROLS.map(([, shown]) => shown).join('')];

function assertShown(stderr: string, shown: string, what: string): void {
  const lines = stderr.split('\n').filter((line) => line.startsWith('portcullis: '));
  assert.ok(lines.length > 0, `${what}: a refusal line (${JSON.stringify(stderr.slice(0, 300))})`);
  assert.doesNotMatch(stderr, RAW_CONTROL, `${what}: a control character written raw: ${JSON.stringify(stderr.slice(0, 300))}`);
  assert.ok(lines[0]!.includes(shown), `${what}: ${JSON.stringify(lines[0])} shows ${JSON.stringify(shown)}`);
}

describe('text the CLI prints back reaches the terminal with its control characters escaped', () => {
  const { cli } = identityCliStore();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-controls-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('usage refusals: an unknown command, option, users verb or api-keys verb (exit 2)', async () => {
    const [raw, shown] = ALL;
    const cases: ReadonlyArray<readonly [string, readonly string[]]> = [
      ['unknown command', [`bogus${raw}`]],
      ['unknown option', [`--bogus${raw}`]],
      ['unknown users verb', ['users', `bogus${raw}`]],
      ['unknown api-keys verb', ['api-keys', `bogus${raw}`]],
    ];
    for (const [what, args] of cases) {
      const res = what.startsWith('unknown users') || what.startsWith('unknown api-keys') ? await cli(args) : await runPortcullis(args);
      assert.equal(res.code, 2, `${what} ${JSON.stringify(raw)}: ${res.stderr.slice(0, 200)}`);
      assertShown(res.stderr, shown, `${what} ${JSON.stringify(raw)}`);
    }
  });

  test('check-config names its file escaped; `users list` prints back its filter as the prefix it filtered on', async () => {
    const [raw, shown] = ALL;
    // A file that exists, under a name with the control in it: `config ok: <path>` on stdout.
    const subdir = join(dir, `ok${raw.replaceAll('/', '_')}`);
    mkdirSync(subdir, { recursive: true });
    const file = join(subdir, 'proxy.yaml');
    writeFileSync(file, 'load_balancing:\n  upstreams: [{ name: api, address: 127.0.0.1, port: 1 }]\n');
    const checked = await runPortcullis(['check-config', '--config', file]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.doesNotMatch(checked.stdout, RAW_CONTROL, `config ok ${JSON.stringify(raw)}: ${JSON.stringify(checked.stdout)}`);
    assert.ok(checked.stdout.includes(shown.replaceAll('/', '_')), JSON.stringify(checked.stdout));
    // The filter is trimmed before it is used, so whitespace controls around it still match, and its `more:` line
    // printed them raw (a carriage return there overwrote the line).
    for (const email of ['page-a@example.com', 'page-b@example.com']) {
      const created = await cli(['users', 'create', email], 'a-long-password-1\n');
      assert.equal(created.code, 0, created.stderr);
    }
    for (const filter of ['page-\r', '\npage-', '\tpage-\u000b', 'PAGE-\f']) {
      const listed = await cli(['users', 'list', '--email', filter, '--limit', '1']);
      assert.equal(listed.code, 0, listed.stderr);
      const more = listed.stdout.split('\n').find((line) => line.startsWith('more: '));
      assert.ok(more !== undefined, `${JSON.stringify(filter)}: a next page (${JSON.stringify(listed.stdout)})`);
      assert.doesNotMatch(listed.stdout, RAW_CONTROL, `${JSON.stringify(filter)}: ${JSON.stringify(listed.stdout)}`);
      assert.match(more, /^more: --email page- --limit 1 --cursor \S+$/, 'the prefix the list was filtered on');
    }
  });

  test('config errors: a config path that cannot be read, a key of the file that is not one (exit 1)', async () => {
    const [raw, shown] = ALL;
    // In a file name, without the slashes (the path is resolved: "//" becomes "/").
    const missing = await runPortcullis(['check-config', '--config', join(dir, `missing${raw.replaceAll('/', '_')}.yaml`)]);
    assert.equal(missing.code, 1, missing.stderr);
    assertShown(missing.stderr, shown.replaceAll('/', '_'), `config path ${JSON.stringify(raw)}`);

    // A key in double quotes holds any character (JSON.stringify writes a YAML double-quoted scalar).
    const file = join(dir, 'unknown-key.yaml');
    writeFileSync(file, `load_balancing:\n  upstreams: [{ name: api, address: 127.0.0.1, port: 1 }]\nserver:\n  ${JSON.stringify(`key${raw}`)}: 1\n`);
    const unknownKey = await runPortcullis(['check-config', '--config', file]);
    assert.equal(unknownKey.code, 1, unknownKey.stderr);
    assertShown(unknownKey.stderr, shown, `config key ${JSON.stringify(raw)}`);
  });
});
