// With tracing off, OpenTelemetry is never loaded: only the two SDK files import it, and only dynamically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = new URL('../../', import.meta.url).pathname;
const SDK_FILES = ['observability/tracing/sdk.ts', 'observability/tracing/otel-tracing.ts'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Static (value) imports of a file: `import x from`, `export … from`; `import type` is erased and does not count. */
function staticImports(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import(?!\s+type\b)|export(?!\s+type\b))[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
}

test('only the SDK files import @opentelemetry packages', () => {
  // The scanner itself finds multi-line imports (else this test could not fail).
  assert.ok(staticImports(readFileSync(join(SRC, SDK_FILES[1]!), 'utf8')).includes('@opentelemetry/api'));
  for (const file of sourceFiles(SRC)) {
    const name = relative(SRC, file);
    if (SDK_FILES.includes(name)) continue;
    const imports = staticImports(readFileSync(file, 'utf8'));
    assert.ok(!imports.some((i) => i.startsWith('@opentelemetry/')), `${name} imports OpenTelemetry`);
  }
});

test('nothing imports the SDK files statically (index.ts loads them with import() when tracing is on)', () => {
  for (const file of sourceFiles(SRC)) {
    const imports = staticImports(readFileSync(file, 'utf8'));
    assert.ok(!imports.some((i) => /\/(sdk|otel-tracing)\.js$/.test(i)), `${relative(SRC, file)} imports the SDK statically`);
  }
  assert.match(readFileSync(join(SRC, 'observability/tracing/index.ts'), 'utf8'), /import\('\.\/sdk\.js'\)/);
});
