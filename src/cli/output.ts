// Where the CLI writes: readable text and tables by default, one JSON document with `--json`.

/** The CLI's two streams and its output mode. */
export interface Output {
  /** Whether `--json` was given: commands then call `json` once instead of `line`/`table`. */
  readonly json: boolean;
  /**
   * One line of text. Everything in it is shown escaped, line breaks too: names, subjects, metadata and reasons are
   * stored by whoever issued a key or sent a token, and one holding `\n` would forge lines of its own.
   */
  line(text?: string): void;
  /** A table with a header row; columns padded to their widest cell. */
  table(header: readonly string[], rows: readonly (readonly string[])[]): void;
  /** The command's one JSON result. */
  result(value: unknown): void;
  /** A warning or note for a human (stderr, so stdout stays the result). */
  note(text: string): void;
}

// What a terminal would act on rather than show: C0 controls, DEL and C1 controls (ESC and CSI start sequences that
// set the title, clear the screen or move the cursor), and the bidi and zero-width characters that reorder or hide
// text. Names, metadata, subjects and actors are stored by whoever issued a key or sent a token: shown as escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
const UNPRINTABLE_OR_BREAK = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;
/** The same, but for JSON text, whose C0 controls JSON.stringify has already escaped (and whose line breaks are layout). */
const UNPRINTABLE_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;
const escaped = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Text for a terminal: control, bidi and zero-width characters as `\uXXXX` (line breaks kept, or escaped too in a cell). */
export function printable(text: string, breaks = true): string {
  return text.replace(breaks ? UNPRINTABLE : UNPRINTABLE_OR_BREAK, escaped);
}

/** An Output over two writers; text mode shows stored values escaped, `--json` escapes what JSON leaves raw. */
export function createOutput(json: boolean, stdout: (s: string) => void, stderr: (s: string) => void): Output {
  return {
    json,
    line: (text = '') => stdout(`${printable(text, false)}\n`),
    table(header, rows) {
      stdout(`${renderTable(header, rows)}\n`);
    },
    // JSON.stringify escapes C0 controls only: the rest as \uXXXX too (the same JSON value).
    result: (value) => stdout(`${JSON.stringify(value, jsonReplacer, 2).replace(UNPRINTABLE_IN_JSON, escaped)}\n`),
    note: (text) => stderr(`${printable(text)}\n`),
  };
}

/** Dates as ISO strings, everything else as is. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

/** A plain-text table: a header, a rule under it, rows; cells padded to each column's widest, the last column left ragged. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows].map((r) => r.map((cell) => printable(cell, false)));
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const render = (r: readonly string[]) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd();
  return [render(all[0] as string[]), render(widths.map((w) => '-'.repeat(w))), ...all.slice(1).map(render)].join('\n');
}

/** A time for humans: ISO 8601 in UTC, or `never`. */
export function when(ms: number | null | undefined): string {
  if (ms === null) return 'never';
  if (ms === undefined) return '-';
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}
