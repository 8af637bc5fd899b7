// The hidden password prompt's line editing (HiddenLine): what reaches the password is what was typed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../errors.js';
import { HiddenLine } from './stdin.js';

function typed(...reads: (string | number[])[]): { state: string; value: string } {
  const line = new HiddenLine();
  let state = 'more';
  for (const read of reads) {
    state = line.feed(typeof read === 'string' ? Buffer.from(read, 'utf8') : Uint8Array.from(read));
    if (state !== 'more') break;
  }
  return { state, value: line.value };
}

test('a character whose bytes come in two reads is the character, not two replacement characters', () => {
  // "é" is C3 A9: a terminal that delivered C3 and then A9 set "password\ufffd\ufffd1" as the password.
  assert.deepEqual(typed('password', [0xc3], [0xa9], '1\r'), { state: 'done', value: 'password\u00e91' });
  assert.deepEqual(typed([0xf0, 0x9f], [0x94, 0x91], 'key\r'), { state: 'done', value: '\u{1f511}key' });
});

test('Ctrl-U clears the line, Backspace takes back one character (a whole emoji too)', () => {
  assert.deepEqual(typed('oops\u0015password123\r'), { state: 'done', value: 'password123' });
  assert.deepEqual(typed('pass\u{1f511}\u007fword\b\bd\r'), { state: 'done', value: 'passwod' });
});

test('other control characters and bytes that are not UTF-8 are refused, never made part of the password', () => {
  for (const read of ['pass\tword\r', 'pass\u001b[Aword\r', [0x70, 0xff, 0x0d]]) {
    assert.throws(() => typed(read), (err) => err instanceof GatewayError && err.code === 'INVALID_BODY', JSON.stringify(read));
  }
});

test('Enter ends the line; Ctrl-C interrupts and Ctrl-D aborts', () => {
  assert.deepEqual(typed('abc\n'), { state: 'done', value: 'abc' });
  assert.equal(typed('ab\u0003').state, 'interrupted');
  assert.equal(typed('ab\u0004').state, 'aborted');
});
