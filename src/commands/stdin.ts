// Reads a secret from stdin: piped (first line), or typed on a terminal without echo. Never from argv.
import { GatewayError } from '../errors.js';
import { MAX_PASSWORD_LENGTH } from '../auth/validation.js';

/**
 * Fatal: bytes that are not UTF-8 are refused, never replaced. A lenient decode turns each invalid sequence (a
 * CESU-8 surrogate, a Latin-1 byte) into U+FFFD, so several different inputs would set the same password.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The secrets read here are passwords: a refusal names that field, as the admin API's 400 does. */
function notUtf8(): GatewayError {
  return new GatewayError('INVALID_BODY', { details: [{ field: 'password', message: 'must be UTF-8 text' }] });
}

/**
 * The most stdin read for the first line: far more than the longest password allowed (MAX_PASSWORD_LENGTH characters,
 * at most 4 bytes each), yet a bound. Without one, input with no newline that never ends (`< /dev/zero`, `yes | tr
 * -d '\n'`) was read into memory until the process was killed: gigabytes within seconds, and no answer.
 */
const MAX_LINE_BYTES = 64 * 1024;

function tooLong(): GatewayError {
  return new GatewayError('INVALID_BODY', { details: [{ field: 'password', message: `must be at most ${MAX_PASSWORD_LENGTH} characters` }] });
}

/** Resolves the first line of stdin without its line ending. */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return readHidden(prompt);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stdin) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if ((chunk as Buffer).includes(10)) break; // the first line is all we need
    if (length > MAX_LINE_BYTES) throw tooLong();
  }
  const bytes = Buffer.concat(chunks);
  const newline = bytes.indexOf(10);
  if ((newline === -1 ? bytes.length : newline) > MAX_LINE_BYTES) throw tooLong();
  let text: string;
  try {
    // Only the first line is decoded: whatever follows it (possibly cut mid-character by the chunking) is not ours.
    text = utf8.decode(newline === -1 ? bytes : bytes.subarray(0, newline));
  } catch {
    throw notUtf8();
  }
  const end = text.indexOf('\n');
  return (end === -1 ? text : text.slice(0, end)).replace(/\r$/, '');
}

/**
 * Ctrl-C at the prompt, or SIGINT while it is shown: the operator stopped the command. Not a failure to report: the
 * command ends with EXIT_INTERRUPTED and prints nothing more (the prompt's line is already ended).
 */
export class PromptInterruptedError extends Error {
  constructor() {
    super('interrupted');
    this.name = 'PromptInterruptedError';
  }
}

/** 128 + SIGINT: what a shell and other Unix tools exit with on an interrupt (a script can tell it from a failure). */
export const EXIT_INTERRUPTED = 130;

/**
 * What is typed at a hidden prompt, fed the terminal's bytes as they come. Decoded by one streaming decoder: a
 * character whose bytes came in two reads (a slow terminal, a paste over a slow link) was decoded per read into two
 * replacement characters, and the password set was not the one typed. Line editing as a terminal's cooked mode
 * does it: Backspace or DEL takes the last character back, Ctrl-U the whole line; any other control character (Tab,
 * an arrow key's escape sequence) is refused rather than made part of a password nobody could type again.
 */
export class HiddenLine {
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  #value = '';

  /** The line so far. */
  get value(): string {
    return this.#value;
  }

  /**
   * Takes the next bytes: 'more' while the line goes on, 'done' at Enter, 'interrupted' at Ctrl-C, 'aborted' at
   * Ctrl-D. Throws the CLI's refusal for bytes that are not UTF-8 or a control character it does not edit with.
   */
  feed(bytes: Uint8Array): 'more' | 'done' | 'interrupted' | 'aborted' {
    let text: string;
    try {
      text = this.#decoder.decode(bytes, { stream: true });
    } catch {
      throw notUtf8();
    }
    for (const ch of text) {
      if (ch === '\r' || ch === '\n') return 'done';
      if (ch === '\u0003') return 'interrupted';
      if (ch === '\u0004') return 'aborted';
      // A whole code point: slice(0, -1) left half of an emoji behind (an unpaired surrogate the rules refuse).
      if (ch === '\u007f' || ch === '\b') this.#value = this.#value.slice(0, -((this.#value.codePointAt(this.#value.length - 2) ?? 0) > 0xffff ? 2 : 1));
      else if (ch === '\u0015') this.#value = '';
      else if (ch < ' ') throw controlCharacter();
      else this.#value += ch;
    }
    return 'more';
  }
}

function controlCharacter(): GatewayError {
  return new GatewayError('INVALID_BODY', {
    details: [{ field: 'password', message: 'must not contain control characters (Tab, Esc, arrow keys): type it again' }],
  });
}

/**
 * Terminal input in raw mode, so the characters are not echoed. In raw mode the terminal sends Ctrl-C as a byte, not
 * a signal: it interrupts (PromptInterruptedError), as does a SIGINT from elsewhere (`kill -INT`), which would else
 * end the process with the terminal still in raw mode and the prompt's line unended. Ctrl-D aborts (an error).
 */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    const line = new HiddenLine();
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.off('SIGINT', onSigint);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(line.value);
    };
    const onSigint = () => done(new PromptInterruptedError());
    const onData = (data: Buffer) => {
      let state: ReturnType<HiddenLine['feed']>;
      try {
        state = line.feed(data);
      } catch (err) {
        return done(err as Error);
      }
      if (state === 'done') done();
      else if (state === 'interrupted') done(new PromptInterruptedError());
      else if (state === 'aborted') done(new Error('aborted'));
    };
    // The SIGINT listener before raw mode: a `kill -INT` that came after the terminal went raw but before the listener
    // was there took node's default (the process ended, the terminal left raw), as a loaded machine showed once.
    process.on('SIGINT', onSigint);
    stdin.on('data', onData);
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
  });
}
