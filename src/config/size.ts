// Parses human sizes ("512KB", "10MB", "1GB", or a number of bytes) into bytes. Units are powers of 1024, as nginx reads them.
import { atLeastOneIfPositive } from './duration.js';

const UNIT_BYTES: Readonly<Record<string, number>> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([kmg]?b?)$/i;

/** Returns bytes, or undefined when the value is not a non-negative size. A bare number means bytes. */
export function parseSize(value: number | string): number | undefined {
  // A bare number is read as "<number>B" is: a fraction rounds, a positive one to at least 1 byte (the JSON Schema, and
  // so editors, offered 0.5 while the config refused it).
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined;
    const bytes = atLeastOneIfPositive(value);
    return Number.isSafeInteger(bytes) ? bytes : undefined;
  }
  const match = SIZE.exec(value.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? '').toLowerCase() || 'b';
  const factor = UNIT_BYTES[unit];
  if (factor === undefined) return undefined;
  // A positive size is at least 1 byte: rounded to 0 (`0.0001KB`), a body limit refused every body. One bound for a
  // number and a string alike: no more bytes than a number counts exactly.
  const bytes = atLeastOneIfPositive(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
