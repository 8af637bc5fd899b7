// A JSON log line made safe for pino-pretty, which prints it on a terminal (logging.format: pretty, or auto on one).
import { showTerminalControls } from './line-writer.js';

/** A JSON string escape that becomes a line break once parsed: `\n`, `\r`, or their `\u000a`/`\u000d` spellings. */
const LINE_BREAK_ESCAPE = /\\(?:n|r|u000[aAdD])/;
const LINE_BREAKS = /[\n\r]/g;

/** `\n` or `\r` as the two characters a reader sees, not as a line break. */
function shownBreak(c: string): string {
  return c === '\n' ? '\\n' : '\\r';
}

/**
 * `line` (one JSON object and its "\n") as pino-pretty should get it. pino-pretty prints field values as JSON, but
 * the message and the names of the top-level fields as text, keeping their newlines (it drops the controls that
 * start escape sequences): a message or field name holding client text (a plugin logging a decoded query parameter)
 * wrote lines of the client's own under the real ones, a forged "[time] INFO: Gateway Stopped". Those two now show a
 * line break as the text \n or \r. DEL and the C1 controls are shown as text too (showTerminalControls). Parsed
 * only when a line break is escaped somewhere in it, which the gateway's own lines never have.
 */
export function prettySafeLine(line: string): string {
  if (!LINE_BREAK_ESCAPE.test(line)) return showTerminalControls(line);
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return showTerminalControls(line); // not one JSON object: pino-pretty prints it as it is, so nothing gained
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return showTerminalControls(line);
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) {
    shown[key.replace(LINE_BREAKS, shownBreak)] = key === 'msg' && typeof value === 'string' ? value.replace(LINE_BREAKS, shownBreak) : value;
  }
  return showTerminalControls(`${JSON.stringify(shown)}\n`);
}
