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
];

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

export async function decodeDatasetText(blob: Blob, fileName: string): Promise<string> {
  const head = new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
  const notText = (what: string, hint: string) =>
    new GradPruneError('dataset', `${fileName} is not a text dataset: it is ${what}.`, { subject: fileName, hint });
  for (const [magic, what, hint] of MAGIC) if (startsWith(head, magic)) throw notText(what, hint);

  let encoding: 'utf-8' | 'utf-16le' | 'utf-16be' = 'utf-8';
  let skip = 0;
  if (startsWith(head, [0xef, 0xbb, 0xbf])) skip = 3;
  else if (startsWith(head, [0xff, 0xfe])) [encoding, skip] = ['utf-16le', 2];
  else if (startsWith(head, [0xfe, 0xff])) [encoding, skip] = ['utf-16be', 2];
  else encoding = utf16WithoutBom(head) ?? 'utf-8';

  if (encoding === 'utf-8') {
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
