// JSON from a person's files, parsed with bounds: JSON.parse itself is iterative, but whatever walks the value
// afterwards (String() of a nested array, structured cloning to the worker, a recursive reader) recurses once per
// level, so 10^7 nested brackets become a stack overflow far from the file that caused it. One iterative scan
// before JSON.parse measures the nesting (and lists the top-level keys as written, duplicates included, which
// JSON.parse silently collapses into the last one).

import { GradPruneError, type ErrorCode } from '../errors';

/** Deeper than any config, tokenizer, index or dataset row needs; far shallower than any stack. */
export const MAX_JSON_DEPTH = 64;

export interface JsonShape {
  /** The deepest nesting of arrays and objects (0 for a bare value). */
  depth: number;
  /** Character offset where nesting first passed `maxDepth`, or null. */
  tooDeepAt: number | null;
  /** The keys of the top-level object in the order written (empty when the top level is not an object). */
  topLevelKeys: string[];
}

/**
 * Nesting depth and top-level keys of a JSON text, in one pass without recursion. Garbage in is fine (the scan
 * never fails; JSON.parse judges validity); keys are collected only when asked.
 */
export function scanJson(text: string, maxDepth: number = MAX_JSON_DEPTH, opts: { keys?: boolean } = {}): JsonShape {
  const topLevelKeys: string[] = [];
  let depth = 0;
  let deepest = 0;
  let topIsObject = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (opts.keys && topIsObject && depth === 1) {
        let k = j + 1;
        while (k < text.length && /\s/.test(text[k])) k++;
        if (text[k] === ':') {
          try {
            topLevelKeys.push(JSON.parse(text.slice(i, j + 1)) as string);
          } catch {
            // a malformed key: JSON.parse of the whole text reports it
          }
        }
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth === 0 && c === 0x7b) topIsObject = true;
      depth++;
      if (depth > deepest) deepest = depth;
      if (depth > maxDepth) return { depth, tooDeepAt: i, topLevelKeys };
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth = Math.max(0, depth - 1);
    }
  }
  return { depth: deepest, tooDeepAt: null, topLevelKeys };
}

/** The longest string V8 makes (2^29 − 24 UTF-16 units): a text file beyond it cannot be read in one piece. */
export const MAX_TEXT_CHARS = 0x1fffffe8;

/**
 * A JSON file of a model folder read and parsed: refused by size before anything is read (a 1 GB config.json is
 * not a config), then as parseJsonFile.
 */
export async function readJsonBlob(blob: Blob, fileName: string, code: ErrorCode, opts: { maxBytes: number; hint?: string }): Promise<unknown> {
  if (blob.size > opts.maxBytes) {
    throw new GradPruneError(code, `${fileName} is ${blob.size} bytes, more than such a file can be (${opts.maxBytes} bytes at most).`, {
      subject: fileName,
      hint: opts.hint ?? 'The file is damaged or not what its name says: use the original file.',
    });
  }
  return parseJsonFile(await blob.text(), fileName, code, { hint: opts.hint });
}

/** 1-based line of a character offset, for messages. */
export function lineOfOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * JSON.parse of a file's text that fails only with a GradPruneError naming the file: invalid JSON, or nesting past
 * `maxDepth` (said as such, with the line).
 */
export function parseJsonFile(text: string, fileName: string, code: ErrorCode, opts: { maxDepth?: number; hint?: string } = {}): unknown {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const shape = scanJson(text, maxDepth);
  if (shape.tooDeepAt !== null) {
    throw new GradPruneError(code, `${fileName} nests arrays or objects more than ${maxDepth} levels deep (line ${lineOfOffset(text, shape.tooDeepAt)}); no model file or dataset row nests that deep.`, {
      subject: fileName,
      hint: opts.hint ?? 'The file is damaged or not what its name says: use the original file.',
    });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GradPruneError(code, `${fileName} is not valid JSON (${(e as Error).message}).`, { subject: fileName, hint: opts.hint });
  }
}

export const isJsonObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** "null", "an array", "a string", … for messages about a value of the wrong kind. */
export const describeJsonType = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
