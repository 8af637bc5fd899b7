// Reads Prometheus text exposition in tests: one sample by name and labels, and a poll-until helper.
import { waitFor as waitForCondition } from './wait.js';

/**
 * The value of the sample `name{labels}` (labels compared as a set; extra labels on the sample do not match), or
 * undefined when the exposition has no such sample.
 */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]!] = pair[2]!;
    const wanted = Object.entries(labels);
    if (Object.keys(found).length !== wanted.length) continue;
    if (wanted.every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** Polls `probe` every `everyMs` until it returns true; throws with `what` after `timeoutMs`. */
export function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 5_000, everyMs = 50): Promise<void> {
  return waitForCondition(probe, what, timeoutMs, everyMs);
}
