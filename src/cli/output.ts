// Where the CLI writes: readable text and tables by default, one JSON document with `--json`.

/** The CLI's two streams and its output mode. */
export interface Output {
  /** Whether `--json` was given: commands then call `json` once instead of `line`/`table`. */
  readonly json: boolean;
  line(text?: string): void;
  /** A table with a header row; columns padded to their widest cell. */
  table(header: readonly string[], rows: readonly (readonly string[])[]): void;
  /** The command's one JSON result. */
  result(value: unknown): void;
  /** A warning or note for a human (stderr, so stdout stays the result). */
  note(text: string): void;
}

/** An Output over two writers. */
export function createOutput(json: boolean, stdout: (s: string) => void, stderr: (s: string) => void): Output {
  return {
    json,
    line: (text = '') => stdout(`${text}\n`),
    table(header, rows) {
      stdout(`${renderTable(header, rows)}\n`);
    },
    result: (value) => stdout(`${JSON.stringify(value, jsonReplacer, 2)}\n`),
    note: (text) => stderr(`${text}\n`),
  };
}

/** Dates as ISO strings, everything else as is. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

/** A plain-text table: a header, a rule under it, rows; cells padded to each column's widest, the last column left ragged. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const render = (r: readonly string[]) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd();
  return [render(header), render(widths.map((w) => '-'.repeat(w))), ...rows.map(render)].join('\n');
}

/** A time for humans: ISO 8601 in UTC, or `never`. */
export function when(ms: number | null | undefined): string {
  if (ms === null) return 'never';
  if (ms === undefined) return '-';
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}
