// Command output: JSON with --json, else a plain aligned table for people.

/** Writes `value` as one JSON document. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes rows as a table with a header line; columns are padded to their widest cell. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(headers), ...rows.map(line)].join('\n')}\n`);
}

/** A date for a table cell: ISO to the second, or "-" when absent. */
export function cellDate(value: unknown): string {
  return typeof value === 'string' ? value.replace(/\.\d{3}Z$/, 'Z') : '-';
}
