// The package's version, from its package.json. Found by walking up from this module rather than by a fixed
// relative path, because this module runs from src/, dist/ and the bundle's chunks in dist/bundle/, each at a
// different depth (scripts/bundle.mjs).
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The `version` of the nearest package.json above this module (the package's own); "unknown" if none is found. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version?: string };
      cached = pkg.version ?? 'unknown';
      break;
    } catch {
      // no package.json here (or not readable): keep walking up
    }
    if (dir.pathname === '/') break;
  }
  return cached;
}
