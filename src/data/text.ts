// A dataset file's bytes → its text: UTF-8 (with or without a byte-order mark) or UTF-16 (a BOM, or the NUL bytes
// of ASCII text in UTF-16 without one); anything that is not text is refused as such, rather than reaching the
// format detection as garbage columns.

import { GradPruneError } from '../errors';
import { MAX_TEXT_CHARS } from '../model/json';

/** How much of the start of a file the encoding and binary checks look at. */
const SNIFF_BYTES = 1 << 16;

/** Archive and binary formats people drop by mistake, by their first bytes. */
const MAGIC: [bytes: number[], what: string, hint: string][] = [
  [[0x1f, 0x8b], 'a gzip archive', 'Decompress it first (gunzip) and give the .jsonl / .csv inside.'],
  [[0x50, 0x4b, 0x03, 0x04], 'a zip archive', 'Unzip it first and give the dataset file inside.'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'a zstd archive', 'Decompress it first (unzstd) and give the dataset file inside.'],
  [[0x42, 0x5a, 0x68], 'a bzip2 archive', 'Decompress it first (bunzip2) and give the dataset file inside.'],
  [[0x7f, 0x45, 0x4c, 0x46], 'a program (ELF)', 'Give the dataset file.'],
  [[0x25, 0x50, 0x44, 0x46], 'a PDF document', 'Export the table as CSV or JSON Lines, saved as UTF-8.'],
  [[0x37, 0x7a, 0xbc, 0xaf], 'a 7z archive', 'Extract it first and give the dataset file inside.'],
];

/** A safetensors file: an 8-byte little-endian header length, then a JSON header that starts with "{". */
function looksLikeSafetensors(head: Uint8Array): boolean {
  if (head.length < 10 || head[6] !== 0 || head[7] !== 0) return false;
  const n = head[0] + head[1] * 2 ** 8 + head[2] * 2 ** 16 + head[3] * 2 ** 24 + head[4] * 2 ** 32;
  return n > 1 && head[8] === 0x7b && head[9] === 0x22;
}

const startsWith = (bytes: Uint8Array, magic: number[]) => magic.every((b, i) => bytes[i] === b);

/** The UTF-16 byte order of text without a BOM, from where its NUL bytes fall (ASCII characters: one NUL each). */
function utf16WithoutBom(head: Uint8Array): 'utf-16le' | 'utf-16be' | null {
  const n = Math.min(head.length, 4096) & ~1;
  if (n < 4) return null;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) evenNul++;
    if (head[i + 1] === 0) oddNul++;
  }
  const pairs = n / 2;
  if (oddNul > 0.4 * pairs && evenNul < 0.05 * pairs) return 'utf-16le';
  if (evenNul > 0.4 * pairs && oddNul < 0.05 * pairs) return 'utf-16be';
  return null;
}

/** ASCII text in UTF-32 (either byte order) without a BOM: three NUL bytes in every four. */
function utf32WithoutBom(head: Uint8Array): boolean {
  const n = Math.min(head.length, 4096) & ~3;
  if (n < 8) return false;
  let nul = 0;
  for (let i = 0; i < n; i++) if (head[i] === 0) nul++;
  const quads = n / 4;
  let le = 0;
  let be = 0;
  for (let i = 0; i < n; i += 4) {
    if (head[i] !== 0 && head[i + 1] === 0 && head[i + 2] === 0 && head[i + 3] === 0) le++;
    if (head[i] === 0 && head[i + 1] === 0 && head[i + 2] === 0 && head[i + 3] !== 0) be++;
  }
  return nul > 0.6 * n && (le > 0.9 * quads || be > 0.9 * quads);
}

export async function decodeDatasetText(blob: Blob, fileName: string): Promise<string> {
  const head = new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
  const notText = (what: string, hint: string) =>
    new GradPruneError('dataset', `${fileName} is not a text dataset: it is ${what}.`, { subject: fileName, hint });
  for (const [magic, what, hint] of MAGIC) if (startsWith(head, magic)) throw notText(what, hint);
  if (looksLikeSafetensors(head)) throw notText('a safetensors file (model weights)', 'Give the dataset file with --data (in the studio: drop it on the Dataset step); model weights belong in the model folder.');
  if (startsWith(head, [0xff, 0xfe, 0, 0]) || startsWith(head, [0, 0, 0xfe, 0xff])) {
    throw notText('UTF-32 text', 'Save it as UTF-8 (or UTF-16) and give that file.');
  }

  let encoding: 'utf-8' | 'utf-16le' | 'utf-16be' = 'utf-8';
  let skip = 0;
  if (startsWith(head, [0xef, 0xbb, 0xbf])) skip = 3;
  else if (startsWith(head, [0xff, 0xfe])) [encoding, skip] = ['utf-16le', 2];
  else if (startsWith(head, [0xfe, 0xff])) [encoding, skip] = ['utf-16be', 2];
  else encoding = utf16WithoutBom(head) ?? 'utf-8';

  if (encoding === 'utf-8') {
    if (utf32WithoutBom(head)) throw notText('UTF-32 text', 'Save it as UTF-8 (or UTF-16) and give that file.');
    const nul = head.indexOf(0);
    if (nul >= 0) throw notText(`binary data (a NUL byte at byte ${nul})`, 'Give a JSON, JSON Lines, CSV, TSV or Parquet file; if this is UTF-16 text without a byte-order mark, save it as UTF-8.');
  }
  const chars = encoding === 'utf-8' ? blob.size : blob.size / 2;
  if (chars > MAX_TEXT_CHARS) {
    throw new GradPruneError('dataset', `${fileName} is ${blob.size} bytes: a text dataset larger than ${Math.floor(MAX_TEXT_CHARS / 2 ** 20)} MiB cannot be read in one piece.`, {
      subject: fileName,
      hint: 'Split it into smaller files, or convert it to Parquet (read in pieces).',
    });
  }
  const bytes = head.byteLength === blob.size ? head : new Uint8Array(await blob.arrayBuffer());
  const text = new TextDecoder(encoding).decode(bytes.subarray(skip));
  // Undecodable bytes become U+FFFD: a few (a Latin-1 "é") are text in the wrong encoding; many are not text at all.
  const sample = text.slice(0, SNIFF_BYTES);
  let replaced = 0;
  let controls = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if (c === 0xfffd) replaced++;
    else if (c === 0 || (c < 0x20 && c !== 9 && c !== 10 && c !== 13 && c !== 12)) controls++;
  }
  if (sample.length > 0 && (replaced + controls) / sample.length > 0.1) {
    throw notText(
      encoding === 'utf-8' ? 'binary data, or text in an encoding other than UTF-8 / UTF-16' : `not readable as ${encoding.toUpperCase()} text`,
      'Give a JSON, JSON Lines, CSV, TSV or Parquet file; save text as UTF-8.',
    );
  }
  return text;
}
