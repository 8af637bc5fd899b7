// ConfigError on its own, so that the package's entry point (src/index.ts) can export it without loading the config
// loader's YAML parser and schema.

/** A config that cannot be used; `message` is the one line printed before exiting with code 1. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
