// The one-line ConfigError a config text produces, for tests of the loader's refusals.
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

/** The ConfigError message `text` produces under `env` (fails the test when the text loads, or throws another error). */
export function configErrorOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfigText(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('config unexpectedly loaded');
}
