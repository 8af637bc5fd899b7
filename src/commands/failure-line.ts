// The line a command that failed prints on stderr (with a refusal's field details, one line each): what went wrong,
// in words safe for a terminal and a log collector (never a stack trace, a URL, SQL text or a secret). The command line prints it (cli.ts), and so does a
// gateway whose failed start-up a stop signal ends (run-gateway.ts), before the signal's exit.
import { ConfigError } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { ListenPortError } from '../listen.js';
import { shownOnTerminal } from '../terminal-text.js';
import { withoutKeySecrets } from '../identity/api-key-format.js';
import { storeFailureLine } from './store-failure.js';
import { CommandRefusedError } from './usage.js';

/**
 * `portcullis: …` and a newline, for `err`. CommandUsageError is not one: it is answered with the help (cli.ts). An
 * API key's secret, in whatever argument the message quotes (a config path, a target), is never printed.
 */
export function failureLine(err: unknown): string {
  return withoutKeySecrets(lineOf(err));
}

function lineOf(err: unknown): string {
  // A refusal the command worded itself (`user … not found`), or a port taken or refused at start (not a config
  // error: the same files may start later): its one line.
  if (err instanceof CommandRefusedError || err instanceof ListenPortError) return `portcullis: ${shownOnTerminal(err.message)}\n`;
  if (err instanceof GatewayError) {
    // A refusal from the identity commands (not found, invalid password…): its safe message and field details.
    const details = Array.isArray(err.details)
      ? (err.details as { field: string; message: string }[]).map((d) => `\n  ${shownOnTerminal(d.field)}: ${shownOnTerminal(d.message)}`).join('')
      : '';
    return `portcullis: ${shownOnTerminal(err.message)}${details}\n`;
  }
  // The message may quote the config path (an argument) or a key of the file as written.
  if (err instanceof ConfigError) return `portcullis: config error: ${shownOnTerminal(err.message)}\n`;
  // A store that is absent, unreachable, locked or read-only: its driver code, never its message or a URL.
  const storeFailure = storeFailureLine(err);
  if (storeFailure !== undefined) return `portcullis: ${shownOnTerminal(storeFailure)}\n`;
  return `portcullis: ${shownOnTerminal(err instanceof Error ? err.name : 'error')}: ${shownOnTerminal(safeMessage(err))}\n`;
}

/** Start-up failures (port in use, unreadable key file) are worth one line, but never a stack trace. */
function safeMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code} ${err.message.split('\n')[0]}` : err.message.split('\n')[0]!;
  }
  return String(err);
}
