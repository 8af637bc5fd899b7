// Reads a .env file into process.env (without overriding) and expands ${VAR} / ${VAR:-default} in config text.
import { readFileSync } from 'node:fs';

const ENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/;
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Loads KEY=VALUE lines from `file` when it exists; variables already set in the environment win. */
export function loadDotEnv(file: string, env: NodeJS.ProcessEnv = process.env): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return; // no .env: nothing to do
  }
  for (const line of text.split(/\r?\n/)) {
    if (line.trimStart().startsWith('#')) continue;
    const match = ENV_LINE.exec(line);
    if (!match) continue;
    const key = match[1]!;
    let value = match[2]!;
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1);
    }
    if (env[key] === undefined) env[key] = value;
  }
}

/** An unset variable without a default: the config cannot be completed. */
export class MissingVariableError extends Error {
  constructor(readonly variable: string) {
    super(`environment variable ${variable} is not set and has no default`);
    this.name = 'MissingVariableError';
  }
}

/**
 * Replaces ${VAR} and ${VAR:-default} in raw config text. An empty variable takes the default, as in the shell.
 * Throws MissingVariableError for ${VAR} with VAR unset.
 */
export function expandVariables(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(PLACEHOLDER, (_whole, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && (value !== '' || fallback === undefined)) return value;
    if (fallback !== undefined) return fallback;
    throw new MissingVariableError(name);
  });
}
