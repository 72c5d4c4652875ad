// Dataset files → records (plain objects), each with the place it came from so a bad row can be named.
// JSON (an array, an object holding one array, or an object of objects keyed by id), JSONL, CSV/TSV, Parquet.
// Browser-safe: only Blob APIs, papaparse and hyparquet.
import Papa from 'papaparse';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { GradPruneError } from '../errors';
import { MAX_JSON_DEPTH, describeJsonType, isJsonObject, lineOfOffset, scanJson } from '../model/json';
import { decodeDatasetText } from './text';
import type { LineKind, RejectedRow } from './types';

export interface SourceRecord {
  line: number;
  where: string;
  value: Record<string, unknown>;
}

export interface SourceRecords {
  lineKind: LineKind;
  records: SourceRecord[];
  rejected: RejectedRow[];
}

export type FileKind = 'json' | 'jsonl' | 'csv' | 'tsv' | 'parquet';

export function fileKindOf(fileName: string): FileKind | null {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.tsv')) return 'tsv';
  if (lower.endsWith('.parquet')) return 'parquet';
  return null;
}

export async function readRecords(blob: Blob, fileName: string): Promise<SourceRecords> {
  let kind = fileKindOf(fileName);
  if (kind === 'parquet' || (kind === null && (await sniffParquet(blob)))) return readParquet(blob, fileName);
  const text = await decodeDatasetText(blob, fileName);
  if (kind === null) kind = /^\s*[[{]/.test(text) ? 'json' : 'csv';
  if (kind === 'jsonl') return readJsonLines(text);
  if (kind === 'json') return readJson(text, fileName);
  return readDelimited(text, fileName, kind === 'tsv' ? '\t' : '');
}

async function sniffParquet(blob: Blob): Promise<boolean> {
  if (blob.size < 8) return false;
  const magic = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  return String.fromCharCode(...magic) === 'PAR1';
}

const isPlainObject = isJsonObject;
const describeType = describeJsonType;

function readJsonLines(text: string): SourceRecords {
  const records: SourceRecord[] = [];
  const rejected: RejectedRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue; // blank lines (and the final newline) are not rows
    const line = i + 1;
    const where = `line ${line}`;
    if (scanJson(raw).tooDeepAt !== null) {
      rejected.push({ line, where, reason: `nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep` });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      rejected.push({ line, where, reason: `not valid JSON (${(e as Error).message})` });
      continue;
    }
    if (!isPlainObject(value)) {
      rejected.push({ line, where, reason: `is ${describeType(value)}, not a JSON object with named fields` });
      continue;
    }
    records.push({ line, where, value });
  }
  return { lineKind: 'line', records, rejected };
}

function readJson(text: string, fileName: string): SourceRecords {
  const shape = scanJson(text, MAX_JSON_DEPTH, { keys: true });
  if (shape.tooDeepAt !== null) {
    throw new GradPruneError('dataset', `${fileName} nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep (line ${lineOfOffset(text, shape.tooDeepAt)}); no dataset row nests that deep.`, {
      subject: fileName,
      hint: 'A dataset file is a JSON array of objects (or JSON Lines, one object per line): fix the file or export it again.',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // A .json file that is really JSON Lines (one object per line) is common: read it as such.
    const firstLine = text.trimStart().split('\n', 1)[0];
    if (text.trim().includes('\n') && isJsonObjectLine(firstLine)) return readJsonLines(text);
    const message = (e as Error).message;
    const offset = jsonErrorOffset(text);
    const at = offset === null ? '' : ` at line ${lineOfOffset(text, offset)}`;
    throw new GradPruneError('dataset', `${fileName} is not valid JSON${at} (${message}).`, {
      subject: fileName,
      hint: 'Fix the file, or save it as JSON Lines (one object per line) so that a bad line only loses that row.',
    });
  }
  if (Array.isArray(parsed)) return elementsOf(parsed, (i) => `element ${i}`);
  if (isPlainObject(parsed)) {
    const entries = Object.entries(parsed);
    const arrays = entries.filter(([, v]) => Array.isArray(v));
    if (arrays.length === 1) {
      const [key, arr] = arrays[0];
      return elementsOf(arr as unknown[], (i) => `element ${i} of "${key}"`);
    }
    if (entries.length > 0 && entries.every(([, v]) => isPlainObject(v))) {
      // An object of records keyed by id (PubMedQA's ori_pqal.json): one row per entry, in file order (JS objects
      // list integer-like keys in numeric order, so the order is read from the text).
      const keys = shape.topLevelKeys;
      const ordered = keys.length === entries.length && keys.every((k) => Object.hasOwn(parsed, k)) ? keys : entries.map(([k]) => k);
      const records = ordered.map((key, i) => ({ line: i, where: `entry "${key}"`, value: parsed[key] as Record<string, unknown> }));
      return { lineKind: 'element', records, rejected: [] };
    }
    const kinds = [...new Set(entries.slice(0, 50).map(([, v]) => describeType(v)))].join(', ');
    throw new GradPruneError(
      'dataset',
      `${fileName} is a JSON object whose values are ${kinds || 'missing'}; there is no list of rows in it` +
        (arrays.length > 1 ? ` (it holds ${arrays.length} arrays: ${arrays.map(([k]) => k).join(', ')})` : '') +
        '.',
      {
        subject: fileName,
        hint: 'A dataset file is a JSON array of objects, an object holding one such array, or an object of objects keyed by id. A file that only maps ids to labels (like PubMedQA test_ground_truth.json) has no text to train on.',
      },
    );
  }
  throw new GradPruneError('dataset', `${fileName} holds ${describeType(parsed)}, not a list of rows.`, { subject: fileName });
}

/**
 * Where a JSON text first goes wrong (a character offset), for the error message: JSON.parse does not say in every
 * engine. A small recursive-descent check of the JSON grammar; null when it finds no error.
 */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = () => {
    throw i;
  };
  const literal = (word: string) => (text.startsWith(word, i) ? (i += word.length) : fail());
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : null;
  } catch (at) {
    if (typeof at === 'number') return Math.min(at, text.length);
    throw at;
  }
}

function isJsonObjectLine(line: string): boolean {
  try {
    return isPlainObject(JSON.parse(line));
  } catch {
    return false;
  }
}

function elementsOf(items: unknown[], whereOf: (i: number) => string): SourceRecords {
  const records: SourceRecord[] = [];
  const rejected: RejectedRow[] = [];
  items.forEach((value, i) => {
    const where = whereOf(i);
    if (isPlainObject(value)) records.push({ line: i, where, value });
    else rejected.push({ line: i, where, reason: `is ${describeType(value)}, not an object with named fields` });
  });
  return { lineKind: 'element', records, rejected };
}

function readDelimited(text: string, fileName: string, delimiter: string): SourceRecords {
  const records: SourceRecord[] = [];
  const rejected: RejectedRow[] = [];
  let header: string[] | null = null;
  let headerLine = 1;
  let rowStart = 0;
  // Line numbers come from the character offset where each row starts (rows may span lines inside quotes).
  let line = 1;
  let scanned = 0;
  const lineAt = (offset: number) => {
    for (; scanned < offset && scanned < text.length; scanned++) if (text.charCodeAt(scanned) === 10) line++;
    return line;
  };
  Papa.parse<string[]>(text, {
    header: false,
    delimiter,
    skipEmptyLines: false,
    step: (result) => {
      const start = rowStart;
      rowStart = result.meta.cursor;
      const fields = result.data.slice();
      if (fields.length > 0 && fields[fields.length - 1].endsWith('\r')) fields[fields.length - 1] = fields[fields.length - 1].slice(0, -1);
      if (fields.length === 1 && fields[0].trim() === '') return; // blank line
      const rowLine = lineAt(start);
      const errors = result.errors.filter((e) => e.type !== 'Delimiter');
      const swallowsLines = fields.some((f) => f.replace(/\r?\n$/, '').includes('\n'));
      if (errors.some((e) => e.code === 'MissingQuotes') && swallowsLines) {
        // Everything after an unclosed quote is one field: rejecting that "row" would hide the real cause.
        throw new GradPruneError('dataset', `${fileName}: line ${rowLine}: a quoted field opens with " and is never closed, so every line after it would be read as part of that one field.`, {
          subject: `${fileName}:${rowLine}`,
          hint: 'Close the quote (a quote inside a quoted field is written twice: ""), or save the file again from a spreadsheet.',
        });
      }
      if (header === null) {
        header = fields.map((name, i) => name.trim() || `column${i + 1}`);
        headerLine = rowLine;
        return;
      }
      const where = `line ${rowLine}`;
      if (errors.length > 0) {
        rejected.push({ line: rowLine, where, reason: `CSV error: ${errors.map((e) => e.message).join('; ')}` });
        return;
      }
      if (fields.length !== header.length) {
        rejected.push({
          line: rowLine,
          where,
          reason: `has ${fields.length} field${fields.length === 1 ? '' : 's'}, but the header (line ${headerLine}) has ${header.length} columns (${header.join(', ')})`,
        });
        return;
      }
      const value: Record<string, unknown> = {};
      header.forEach((name, i) => (value[name] = fields[i]));
      records.push({ line: rowLine, where, value });
    },
  });
  if (header === null) {
    throw new GradPruneError('dataset', `${fileName} is empty: no header row and no data.`, { subject: fileName });
  }
  return { lineKind: 'line', records, rejected };
}

/**
 * The file as hyparquet reads it. Damaged metadata can point anywhere (negative, fractional, past the end, past
 * 2^32, where Node's Blob.slice aborts the process): such a range is refused as a damaged file.
 */
function blobBuffer(blob: Blob, fileName: string): AsyncBuffer {
  const size = blob.size;
  return {
    byteLength: size,
    slice: (start, end = size) => {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > size) {
        throw new GradPruneError('dataset', `${fileName}: the Parquet metadata points at bytes ${start}–${end}, outside the file (${size} bytes); it is damaged or truncated.`, {
          subject: fileName,
          hint: 'Download or export the file again.',
        });
      }
      return blob.slice(start, end).arrayBuffer();
    },
  };
}

/**
 * Every column chunk must belong to one top-level column of the schema, a leaf at most once per row group: hyparquet
 * reads every chunk but assembles rows only from the schema's columns, so the decoding of a stray chunk of damaged
 * metadata would fail where nothing awaits it (an unhandled rejection, which ends a Node process).
 */
function checkColumnChunks(metadata: FileMetaData, fileName: string): void {
  const columns = new Map(parquetSchema(metadata).children.map((c) => [c.element.name, c.children.length > 0]));
  metadata.row_groups.forEach((group, g) => {
    const leaves = new Set<string>();
    for (const chunk of group.columns) {
      const name = chunk.meta_data?.path_in_schema?.[0];
      const isStruct = name === undefined ? undefined : columns.get(name);
      if (isStruct === undefined || (!isStruct && leaves.has(name!))) {
        throw new GradPruneError('dataset', `${fileName}: row group ${g} has a column chunk (${String(name)}) that is not one column of the file's schema; the Parquet metadata is damaged.`, {
          subject: fileName,
          hint: 'Download or export the file again.',
        });
      }
      if (!isStruct) leaves.add(name!);
    }
  });
}

/** Parquet values as plain JSON-like data: int64 → number, typed arrays → arrays. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => plain(x));
  if (Array.isArray(v)) return v.map(plain);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

async function readParquet(blob: Blob, fileName: string): Promise<SourceRecords> {
  let rows: Record<string, unknown>[];
  try {
    const file = blobBuffer(blob, fileName);
    const metadata = await parquetMetadataAsync(file);
    checkColumnChunks(metadata, fileName);
    rows = await parquetReadObjects({ file, metadata });
  } catch (e) {
    if (e instanceof GradPruneError) throw e;
    throw new GradPruneError('dataset', `${fileName} could not be read as Parquet (${(e as Error).message}).`, {
      subject: fileName,
      hint: 'Parquet files compressed with snappy or uncompressed are supported; re-save others with one of those, or as JSONL/CSV.',
      cause: e,
    });
  }
  let records: SourceRecord[];
  try {
    records = rows.map((row, i) => ({ line: i, where: `row ${i}`, value: plain(row) as Record<string, unknown> }));
  } catch (e) {
    // Only a schema nested thousands of levels deep gets here (plain() recurses once per level).
    throw new GradPruneError('dataset', `${fileName}: the Parquet schema nests its columns too deeply to read (${(e as Error).message}).`, { subject: fileName, cause: e });
  }
  return { lineKind: 'row', records, rejected: [] };
}
