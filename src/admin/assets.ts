// The dashboard's static files (src/admin/dashboard/*), read once at start-up from beside this module.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One file ready to send: its bytes and content type. */
export interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

/** URL path → asset. */
export type DashboardAssets = ReadonlyMap<string, Asset>;

const FILES: ReadonlyArray<readonly [path: string, file: string, type: string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
  ['/favicon.svg', 'favicon.svg', 'image/svg+xml'],
];

/**
 * Reads the dashboard files once. They sit beside this module: src/admin/dashboard/ under tsx, and
 * dist/admin/dashboard/ after `npm run build` (which copies them, see scripts/build.mjs). Throws when a file
 * is missing, so a broken build fails at start-up rather than serving 404s.
 */
export function loadDashboard(dir: URL = new URL('./dashboard/', import.meta.url)): DashboardAssets {
  const assets = new Map<string, Asset>();
  for (const [path, file, type] of FILES) {
    const url = new URL(file, dir);
    try {
      assets.set(path, { body: readFileSync(url), type });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`dashboard file ${fileURLToPath(url)} cannot be read (${code})`);
    }
  }
  return assets;
}
