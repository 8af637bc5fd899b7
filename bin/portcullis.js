#!/usr/bin/env node
// Entry point of the `portcullis` command. From a source checkout it runs the TypeScript through tsx; in a built
// image (no src/, see Dockerfile) it runs the compiled dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/cli.js', import.meta.url).href);
}
const code = await cli.main(process.argv.slice(2));
process.exitCode = code;
