// Command output: JSON with --json, else a plain aligned table for people; and how a refusal names what was missing
// (always on stderr, by cli.ts: with --json, stdout holds JSON or nothing).
import { GatewayError } from '../errors.js';
import { CommandRefusedError } from './usage.js';
import { shownOnTerminal } from '../terminal-text.js';
import { withoutKeySecrets } from '../identity/api-key-format.js';

/** Writes `value` as one JSON document. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes rows as a table with a header line; columns are padded to their widest cell. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(headers), ...rows.map(line)].join('\n')}\n`);
}

/** A date for a table cell: ISO to the second, or "-" when absent. */
export function cellDate(value: unknown): string {
  return typeof value === 'string' ? value.replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** The longest argument printed back in a message; a longer one is cut, with "…". */
const SHOWN_ARGUMENT_LENGTH = 80;

/**
 * An argument as printed back: C0 and C1 control characters and DEL as \xNN (raw, ESC and CSI start terminal
 * escape sequences: an argument could recolour or rewrite the operator's terminal), at most SHOWN_ARGUMENT_LENGTH
 * characters.
 */
export function shownArgument(text: string): string {
  // An API key pasted where its id was asked for (`api-keys revoke pk_<id>_<secret>`) was printed back to stderr,
  // which scripts and CI jobs keep in their logs: its secret part never is.
  text = withoutKeySecrets(text);
  const cut = text.length > SHOWN_ARGUMENT_LENGTH ? `${text.slice(0, SHOWN_ARGUMENT_LENGTH)}…` : text;
  return shownOnTerminal(cut);
}

/**
 * `err`, or for the store's NOT_FOUND the refusal naming what was not found (`user <target> not found`, `api key
 * <target> not found`), the target as typed. The exit code stays 1.
 */
export function namingNotFound(err: unknown, what: string, target: string): unknown {
  if (err instanceof GatewayError && err.code === 'NOT_FOUND') return new CommandRefusedError(`${what} ${shownArgument(target)} not found`);
  return err;
}
