// .env values as docker compose and dotenv read them: a comment after a blank is not part of the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDotEnv } from './env.js';

test('a comment after a value, quoted or not, is not part of it; a # inside a value is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dotenv-values-'));
  try {
    const file = join(dir, '.env');
    writeFileSync(
      file,
      [
        'PORT=8080 # the proxy port',
        'TAB=8081\t# tab',
        'HASH=a#b',
        'DQ="two words" # note',
        "SQ='it # stays'   #note",
        'INNER="a"b"',
        'EMPTY=',
        'QUOTED_EMPTY="" # none',
        'CRLF=value # c\r',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {};
    assert.equal(loadDotEnv(file, env), undefined);
    assert.deepEqual(env, {
      PORT: '8080',
      TAB: '8081',
      HASH: 'a#b',
      DQ: 'two words',
      SQ: 'it # stays',
      INNER: 'a"b',
      EMPTY: '',
      QUOTED_EMPTY: '',
      CRLF: 'value',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('escapes in quotes are read as docker compose reads them: \\n, \\r, \\t, \\\\ and \\" in double quotes, \\\' in single', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dotenv-escapes-'));
  try {
    const file = join(dir, '.env');
    writeFileSync(
      file,
      [
        'PEM="-----BEGIN KEY-----\\nabc\\n-----END KEY-----\\n"',
        'TABS="a\\tb\\r"',
        'JSON="{\\"hello\\": \\"json\\"}" # note',
        'BACKSLASH="ends\\\\"',
        'OTHER="C:\\dir\\x"',
        "SQ='Let\\'s go\\n'",
        'BARE=a\\nb',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {};
    assert.equal(loadDotEnv(file, env), undefined);
    assert.deepEqual(env, {
      PEM: '-----BEGIN KEY-----\nabc\n-----END KEY-----\n',
      TABS: 'a\tb\r',
      JSON: '{"hello": "json"}',
      BACKSLASH: 'ends\\',
      OTHER: 'C:\\dir\\x',
      SQ: "Let's go\\n",
      BARE: 'a\\nb',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// From review: a value whose quote was never closed was taken as written, the quote then part of a secret
// (`ADMIN_TOKEN="0123…` made the token `"0123…`), and a double-quoted value over several lines (a PEM pasted as it is)
// was cut at its first line, the rest read as other lines. docker compose reads a quoted value on to its closing
// quote, across lines, and refuses one never closed: so does the gateway.
test('a quoted value runs on to the line that closes it; a quote never closed is an error naming the line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dotenv-multiline-'));
  try {
    const file = join(dir, '.env');
    writeFileSync(
      file,
      ['FIRST=1', 'PEM="-----BEGIN KEY-----', 'abc', '-----END KEY-----" # note', "SQ='one", "two'", 'AFTER=2', ''].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {};
    assert.equal(loadDotEnv(file, env), undefined);
    assert.deepEqual(env, { FIRST: '1', PEM: '-----BEGIN KEY-----\nabc\n-----END KEY-----', SQ: 'one\ntwo', AFTER: '2' });
    // From the fix's review: a line that holds its closing quote is one line, whatever follows the quote; an escaped
    // quote closes nothing, at a line's end too.
    writeFileSync(file, ['SECRET="abc"#prod', 'PORT=24899', 'UIDH="X-Uid \\"', 'two" # note', 'LAST=3'].join('\n'));
    const more: NodeJS.ProcessEnv = {};
    assert.equal(loadDotEnv(file, more), undefined);
    assert.deepEqual(more, { SECRET: '"abc"#prod', PORT: '24899', UIDH: 'X-Uid "\ntwo', LAST: '3' });
    for (const [text, line] of [
      ['TOKEN="0123456789abcdef0123\nOTHER=1\n', 'line 1: the quote opening TOKEN\'s value is never closed'],
      ["A=1\nSECRET='abc\n", "line 2: the quote opening SECRET's value is never closed"],
      ['A=1\n\nPB="multi\nline\n', "line 3: the quote opening PB's value is never closed"],
    ] as const) {
      writeFileSync(file, text);
      const unchanged: NodeJS.ProcessEnv = {};
      assert.equal(loadDotEnv(file, unchanged), `cannot read .env (${line})`);
      assert.deepEqual(unchanged, {}, 'nothing of a refused file is applied');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
