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
        'UNCLOSED="no end # kept',
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
      UNCLOSED: '"no end # kept',
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
