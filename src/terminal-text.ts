// Text for a terminal: what the CLI and `start` print on stderr of what they were given (an argument, an option, a
// config path, a key of the config file) is shown with its control characters as visible text. Without imports:
// cli.ts, run-gateway.ts and cluster-config.ts load it on every start.

/** C0 controls, DEL and C1 controls: a terminal acts on them (ESC and U+009B start escape sequences, CR and LF move). */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * `text` with every C0 control, DEL and C1 control as `\xNN`: raw, ESC and CSI start escape sequences (a colour, a
 * cleared screen, an OSC 8 link whose text hides its target), CR overwrites the line and LF forges one. For one line
 * of a message; a caller that writes several lines escapes each piece before joining them.
 */
export function shownOnTerminal(text: string): string {
  return text.replace(CONTROLS, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
