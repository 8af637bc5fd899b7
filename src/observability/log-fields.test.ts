// No log call of ours passes a field that every line already has (the logger's base fields, pino's level, time and
// msg): the line would hold the key twice ("Upstream Down" once wrote `"service":"portcullis",…,"service":"dead"`).
// Read from the sources, so that lines no test provokes are covered too: every `.trace/debug/info/warn/error/fatal`
// or `.child` call whose first argument is an object literal. A field set through a variable or a spread is not
// seen here; test/e2e/log-duplicate-keys.test.ts reads the lines of a real run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { LOG_BASE } from './logger.js';

const SRC = new URL('..', import.meta.url).pathname;
const LEVEL_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'child']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** `file:line: key` for each log-call field named in `reserved`, and how many log calls were read. */
function reservedFields(reserved: ReadonlySet<string>): { found: string[]; calls: number } {
  const found: string[] = [];
  let calls = 0;
  for (const file of sourceFiles(SRC)) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        LEVEL_METHODS.has(node.expression.name.text) &&
        node.arguments[0] !== undefined &&
        ts.isObjectLiteralExpression(node.arguments[0])
      ) {
        calls++;
        for (const property of node.arguments[0].properties) {
          const name = property.name;
          const key = name === undefined ? undefined : ts.isIdentifier(name) || ts.isStringLiteral(name) ? name.text : undefined;
          if (key !== undefined && reserved.has(key)) {
            const { line } = source.getLineAndCharacterOfPosition(property.getStart(source));
            found.push(`${relative(SRC, file)}:${line + 1}: ${key}`);
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { found, calls };
}

test('no log call passes a field every line already has (base fields, level, time, msg)', () => {
  // `component` is the CLI commands' own base field (commands/context.ts).
  const reserved = new Set([...Object.keys(LOG_BASE), 'component', 'level', 'time', 'msg']);
  assert.ok(reserved.has('service'));
  const { found, calls } = reservedFields(reserved);
  assert.ok(calls >= 50, `the scan found the log calls (${calls})`);
  assert.deepEqual(found, []);
});
