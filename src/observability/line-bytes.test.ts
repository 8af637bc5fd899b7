// The byte writers spell every field exactly as JSON.stringify or String would, or refuse it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, putAscii, putBytes, putHundredths, putJsonString, putUint } from './line-bytes.js';

const buf = new Uint8Array(64 * 1024);

function written(end: number, start = 0): string {
  return Buffer.from(buf.subarray(start, end)).toString('latin1');
}

/** A deterministic stream of pseudo-random numbers (a failure prints the same inputs again). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

test('putJsonString writes printable ASCII as JSON.stringify does, at any offset', () => {
  const next = random(1);
  for (let n = 0; n < 5_000; n++) {
    let text = '';
    const length = Math.floor(next() * 40);
    for (let i = 0; i < length; i++) text += String.fromCharCode(0x20 + Math.floor(next() * 0x5f)); // 0x20-0x7e
    if (text.includes('"') || text.includes('\\')) continue;
    const at = Math.floor(next() * 100);
    const end = putJsonString(buf, at, text);
    assert.equal(written(end, at), JSON.stringify(text));
  }
});

test('putJsonString refuses whatever JSON needs an escape or UTF-8 for, and DEL (the line writer escapes it)', () => {
  for (const text of ['a"b', 'a\\b', 'tab\there', 'nul\u0000', '\u001f', 'del\u007f', '\u009b', 'café', '€', '😀', '\ud800', '/p\u2028']) {
    assert.equal(putJsonString(buf, 0, text), -1, JSON.stringify(text));
  }
  assert.equal(written(putJsonString(buf, 0, '')), '""');
});

test('putUint writes non-negative integers as String does and refuses the rest', () => {
  const next = random(2);
  const values = [0, 1, 9, 10, 99, 100, 101, 200, 404, 599, 1_000_000, Date.now(), Number.MAX_SAFE_INTEGER];
  for (let i = 0; i < 2_000; i++) values.push(Math.floor(next() * 10 ** Math.floor(next() * 16)));
  for (const n of values) assert.equal(written(putUint(buf, 0, n)), String(n));
  for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) assert.equal(putUint(buf, 0, n), -1, String(n));
});

test('putHundredths writes a duration rounded to hundredths as String does', () => {
  const next = random(3);
  const values = [0, -0, 0.01, 0.05, 0.1, 0.5, 0.99, 1, 1.1, 1.01, 2.3, 10, 100.07, 999_999.99, 123_456_789.12, 999_999_999.99];
  for (let i = 0; i < 20_000; i++) {
    const ms = next() * 10 ** Math.floor(next() * 10); // up to 1e9, the largest accepted
    values.push(Math.round(ms * 100) / 100); // how the driver rounds durationMs
  }
  for (const x of values) assert.equal(written(putHundredths(buf, 0, x)), String(x), String(x));
});

test('putHundredths refuses what is not a non-negative number in hundredths below 1e9', () => {
  for (const x of [-0.01, -1, 0.001, 1.234, 1e9, 1e12, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.equal(putHundredths(buf, 0, x), -1, String(x));
  }
});

test('putBytes and putAscii copy constants and known-ASCII values at any offset, short and long alike', () => {
  for (const text of ['', '"', ',"path":', ',"service":"portcullis","request_id":"', 'x'.repeat(300)]) {
    for (const at of [0, 1, 7, 4_095]) {
      assert.equal(written(putBytes(buf, at, ascii(text)), at), text);
      assert.equal(written(putAscii(buf, at, text), at), text);
    }
  }
  assert.throws(() => ascii('caf\u00e9'), TypeError);
});
