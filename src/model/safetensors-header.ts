// The safetensors header, validated as the reference reader (huggingface/safetensors, tensor.rs) does, so that a
// file it refuses is refused here too and a file it accepts is read at the same offsets:
//   - u64 little-endian header length N ≤ 100 MB and ≤ the file; N bytes of UTF-8 JSON starting with "{";
//   - an object of tensors { dtype, shape, data_offsets: [begin, end) relative to the data }, each name once, plus
//     an optional "__metadata__" map of strings;
//   - numel(shape) × dtype size = end − begin; sorted by offset, the tensors tile the data section exactly: the
//     first begins at 0, each begins where the previous ends, the last ends at the end of the file (no gap, no
//     overlap, no trailing bytes). A header length off by one byte thus fails here instead of shifting every tensor.
// Pure over bytes, so the fuzz tests drive it directly.

import { GradPruneError } from '../errors';
import { dtypeBytes, isSafetensorsDType, type SafetensorsDType } from './dtype';
import { describeJsonType, isJsonObject, scanJson } from './json';

/** The largest header the format allows (the reference implementation refuses larger ones). */
export const MAX_HEADER_BYTES = 100_000_000;
/** A header is an object of tensor objects holding a shape array: three levels. */
const HEADER_DEPTH = 3;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
  /** The file the tensor lives in (a shard's name for sharded checkpoints). */
  file: string;
}

export interface SafetensorsHeader {
  /** 8 + N: where the data section starts. */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const DAMAGED = 'The file is damaged or not a safetensors file: export it again.';

export function headerError(fileName: string, what: string, hint = DAMAGED): GradPruneError {
  return new GradPruneError('file', `${fileName}: ${what}.`, { subject: fileName, hint });
}

/** The header length from a file's first 8 bytes, checked against the limit and the file's size. */
export function headerLength(first8: Uint8Array, fileSize: number, fileName: string): number {
  if (fileSize < 8) throw headerError(fileName, fileSize === 0 ? 'the file is empty' : `the file is only ${fileSize} bytes (truncated)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw headerError(fileName, `the header length says ${n} bytes, more than the format's limit of 100 MB`);
  const headerLen = Number(n);
  if (headerLen > fileSize - 8) {
    throw headerError(fileName, `the header length (${headerLen} bytes) is larger than the file (${fileSize} bytes); it is truncated or not safetensors`);
  }
  if (headerLen < 2) throw headerError(fileName, 'the header is empty');
  return headerLen;
}

/** Parse and validate the N header bytes of a file of `fileSize` bytes. */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, fileName: string): SafetensorsHeader {
  const fail = (what: string, hint?: string) => headerError(fileName, what, hint);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw fail('the header is not UTF-8 text');
  }
  if (text[0] !== '{') throw fail(`the header is not a JSON object (it must start with "{"; it starts with ${JSON.stringify(text.slice(0, 8))})`);
  const shape = scanJson(text, HEADER_DEPTH, { keys: true });
  if (shape.tooDeepAt !== null) {
    throw fail(`the header nests deeper than a safetensors header can (more than ${HEADER_DEPTH} levels, at header byte ${shape.tooDeepAt}); "__metadata__" must map names to strings`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isJsonObject(header)) throw fail('the header is not a JSON object');
  const seen = new Set<string>();
  for (const key of shape.topLevelKeys) {
    if (seen.has(key)) throw fail(`${key === '__metadata__' ? '"__metadata__"' : `tensor "${key}"`} appears twice in the header`, 'A writer that lists a name twice leaves it ambiguous which bytes are meant: export the file again.');
    seen.add(key);
  }

  const dataStart = 8 + headerBytes.byteLength;
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = readMetadata(entry, fail);
      continue;
    }
    tensors.set(name, readTensor(name, entry, dataStart, dataLen, fileName, fail));
  }
  checkTiling([...tensors.values()], dataStart, dataLen, fail);
  return { dataStart, tensors, metadata };
}

function readMetadata(entry: unknown, fail: (what: string) => GradPruneError): Record<string, string> {
  if (!isJsonObject(entry)) throw fail(`"__metadata__" is ${describeJsonType(entry)}, not a map of strings`);
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw fail(`"__metadata__" entry "${k}" is ${describeJsonType(v)}; every metadata value must be a string`);
  }
  return { ...(entry as Record<string, string>) };
}

function readTensor(name: string, entry: unknown, dataStart: number, dataLen: number, fileName: string, fail: (what: string, hint?: string) => GradPruneError): TensorInfo {
  if (!isJsonObject(entry)) throw fail(`tensor "${name}" is described by ${describeJsonType(entry)}, not an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: off } = entry;
  if (typeof dtype !== 'string') throw fail(`tensor "${name}" has no dtype`);
  if (!isSafetensorsDType(dtype)) throw fail(`tensor "${name}" has an unknown dtype "${dtype}"`, 'Known dtypes: F32, F16, BF16 (and the integer types).');
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
    throw fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
  }
  const [b, e] = off as [number, number];
  if (e > dataLen) {
    throw fail(
      `tensor "${name}" ends at byte ${dataStart + e}, past the end of the file (${dataStart + dataLen} bytes); the file is truncated`,
      'The download or copy stopped early: download (or export) the file again.',
    );
  }
  const dims = shape as number[];
  const expected = dims.reduce((a, d) => a * d, dtypeBytes(dtype));
  if (e - b !== expected) {
    throw fail(`tensor "${name}" has ${e - b} bytes but its shape [${dims.join(', ')}] of ${dtype} needs ${Number.isSafeInteger(expected) ? expected : 'more than 2^53'}`);
  }
  return { name, dtype, shape: dims, begin: dataStart + b, end: dataStart + e, file: fileName };
}

/** Sorted by offset, the tensors must cover [0, dataLen) of the data exactly, one after another. */
function checkTiling(tensors: TensorInfo[], dataStart: number, dataLen: number, fail: (what: string, hint?: string) => GradPruneError): void {
  const sorted = tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  let previous: TensorInfo | null = null;
  for (const t of sorted) {
    if (t.begin < at) throw fail(`tensors "${previous!.name}" and "${t.name}" overlap in the file (bytes ${t.begin}–${Math.min(at, t.end)})`);
    if (t.begin > at) {
      throw fail(`bytes ${at}–${t.begin} of the file belong to no tensor (a gap ${previous ? `after "${previous.name}"` : 'at the start of the data'}, before "${t.name}")`);
    }
    at = t.end;
    previous = t;
  }
  const end = dataStart + dataLen;
  if (at < end) {
    const last = previous ? `the last tensor, "${previous.name}", ends at byte ${at}` : 'the header lists no tensor';
    throw fail(
      `${end - at} byte${end - at === 1 ? '' : 's'} after the data belong to no tensor (${last}; the file has ${end})`,
      'Either the header length (the first 8 bytes) is wrong, which would shift every tensor, or bytes were appended: export the file again.',
    );
  }
}
