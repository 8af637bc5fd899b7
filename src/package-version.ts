// The package's version and root, from its package.json. Found by walking up from this module rather than by a
// fixed relative path, because this module runs from src/, dist/ and the bundle's chunks in dist/bundle/, each at a
// different depth (scripts/bundle.mjs).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The nearest package.json above this module (the package's own), read and parsed once; undefined if none. */
let found: { readonly dir: URL; readonly pkg: { version?: string } } | null | undefined;

function nearestPackage(): { readonly dir: URL; readonly pkg: { version?: string } } | undefined {
  if (found !== undefined) return found ?? undefined;
  found = null;
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      found = { dir, pkg: JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version?: string } };
      break;
    } catch {
      // no package.json here (or not readable): keep walking up
    }
    if (dir.pathname === '/') break;
  }
  return found ?? undefined;
}

/** The `version` of the package's package.json; "unknown" if none is found. */
export function packageVersion(): string {
  return nearestPackage()?.pkg.version ?? 'unknown';
}

/** The package's installation directory (where its package.json is, with a trailing slash); undefined if none. */
export function packageRoot(): string | undefined {
  const dir = nearestPackage()?.dir;
  return dir === undefined ? undefined : fileURLToPath(dir);
}
