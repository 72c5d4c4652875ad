// Fuzzing every dataset reader (fast-check): JSON, JSON Lines, CSV, TSV, Parquet and sniffed files, from arbitrary
// text and bytes, from rows of the recognised columns holding arbitrary values, in UTF-8 and UTF-16, then the
// tokenization of whatever was read. Each input is read into rows or refused with a GradPruneError; never another
// exception, never a hang (a time bound per case), never unbounded memory.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { openFolder } from '../model/node-files';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer';
import { fixtureDir } from '../testing/paths';
import { readDataset } from './dataset';
import { runs, typedOnly } from '../testing/fuzz';
import { writeParquet } from './testing/parquet-writer';
import { buildExamples } from './tokenize';
import type { Dataset } from './types';


let tokenizer: TextTokenizer;
beforeAll(async () => {
  tokenizer = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
});

/** Read (and, when rows were read, tokenize) one file: rows or a GradPruneError naming the file. */
async function readTyped(bytes: Uint8Array | string, fileName: string): Promise<Dataset | GradPruneError> {
  const out = await typedOnly(async () => {
    const ds = await readDataset(new Blob([bytes as BlobPart]), fileName);
    const set = buildExamples(ds, tokenizer, { maxSeqLen: 64 });
    expect(set.examples.length + set.rejected.length).toBeGreaterThanOrEqual(ds.examples.length);
    return ds;
  });
  if (out instanceof GradPruneError) expect(out.message).toContain(fileName.split('/').pop()!);
  return out;
}

const COLUMNS = [
  'text', 'prompt', 'completion', 'response', 'instruction', 'input', 'output', 'messages', 'conversations', 'input_ids',
  'loss_mask', 'labels', 'query', 'choices', 'gold', 'question', 'answer', 'options', 'label', 'sentence', 'option1',
  'option2', 'context_options', 'continuation', 'ctx', 'endings', 'QUESTION', 'CONTEXTS', 'final_decision', 'opa', 'opb', 'cop',
];

const message = fc.record(
  { role: fc.oneof(fc.constantFrom('user', 'assistant', 'system', 'gpt', 'human', 'wizard'), fc.jsonValue({ maxDepth: 1 })), content: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })) },
  { requiredKeys: [] },
);
const cell = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.integer({ min: -5, max: 600 }),
  fc.array(fc.integer({ min: -200, max: 70_000 }), { maxLength: 6 }),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
  fc.array(message, { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const row = fc.dictionary(fc.oneof(fc.constantFrom(...COLUMNS), fc.string({ maxLength: 6 })), cell, { maxKeys: 4 });
const rows = fc.array(row, { maxLength: 6 });

const csvField = (v: unknown, delimiter: string) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
  return s.includes(delimiter) || s.includes('"') || s.includes('\n') ? `"${s.replaceAll('"', '""')}"` : s;
};
function delimited(rs: Record<string, unknown>[], delimiter: string): string {
  const header = [...new Set(rs.flatMap((r) => Object.keys(r)))];
  return [header.join(delimiter), ...rs.map((r) => header.map((h) => csvField(r[h] ?? '', delimiter)).join(delimiter))].join('\n') + '\n';
}

function utf16(text: string, bom: boolean, be: boolean): Uint8Array {
  const out = new Uint8Array((bom ? 2 : 0) + text.length * 2);
  const view = new DataView(out.buffer);
  if (bom) view.setUint16(0, 0xfeff, !be);
  for (let i = 0; i < text.length; i++) view.setUint16((bom ? 2 : 0) + i * 2, text.charCodeAt(i), !be);
  return out;
}

/** A few characters changed, dropped or doubled: most edits leave a file almost valid, which readers find hardest. */
const textEdits = fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom('drop', 'double', 'quote', 'brace', 'newline', 'nul') }), { maxLength: 3 });
function edit(text: string, edits: { at: number; kind: string }[]): string {
  let t = text;
  for (const e of edits) {
    const i = t.length ? e.at % t.length : 0;
    const insert = { drop: '', double: t[i] ?? '', quote: '"', brace: '{', newline: '\n', nul: '\u0000' }[e.kind]!;
    t = t.slice(0, i) + insert + t.slice(e.kind === 'drop' ? i + 1 : i);
  }
  return t;
}

const RUNS = runs(1000);

describe('fuzz: dataset readers', () => {
  it('JSON: arrays of rows, objects of rows, arbitrary JSON and edited JSON', async () => {
    const doc = fc.oneof(rows, fc.record({ data: rows }), fc.dictionary(fc.string({ maxLength: 4 }), row, { maxKeys: 4 }), fc.jsonValue({ maxDepth: 4 }));
    await fc.assert(
      fc.asyncProperty(doc, textEdits, async (d, edits) => {
        await readTyped(edit(JSON.stringify(d) ?? '', edits), 'train.json');
      }),
      RUNS,
    );
  });

  it('JSON Lines: rows one per line, with edits and arbitrary lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(row, fc.jsonValue({ maxDepth: 3 })), { maxLength: 6 }), textEdits, async (lines, edits) => {
        await readTyped(edit(lines.map((l) => JSON.stringify(l) ?? '').join('\n'), edits), 'train.jsonl');
      }),
      RUNS,
    );
  });

  it('CSV and TSV: rows of the recognised columns, with edits (unclosed quotes, ragged rows)', async () => {
    await fc.assert(
      fc.asyncProperty(rows, fc.constantFrom(',', '\t'), textEdits, async (rs, delimiter, edits) => {
        await readTyped(edit(delimited(rs, delimiter), edits), delimiter === ',' ? 'train.csv' : 'train.tsv');
      }),
      RUNS,
    );
  });

  it('Parquet: valid files with byte-level damage, and arbitrary bytes named .parquet', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.option(fc.nat(), { nil: undefined }),
        async (pairs, flips, cut) => {
          const bytes = writeParquet([
            { name: 'prompt', type: 'string', values: pairs.map((p) => p[0]) },
            { name: 'completion', type: 'string', values: pairs.map((p) => p[1]) },
          ]);
          for (const [at, v] of flips) bytes[at % bytes.length] = v;
          await readTyped(cut === undefined ? bytes : bytes.subarray(0, cut % bytes.length), 'train.parquet');
        },
      ),
      RUNS,
    );
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (b) => void (await readTyped(b, 'train.parquet'))), RUNS);
  });

  it('any bytes under any name (sniffed, binary, UTF-16 with and without a byte-order mark)', async () => {
    const name = fc.constantFrom('train.json', 'train.jsonl', 'train.csv', 'train.tsv', 'train.txt', 'train');
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 128 }),
      fc.tuple(rows, fc.boolean(), fc.boolean()).map(([rs, bom, be]) => utf16(rs.map((r) => JSON.stringify(r)).join('\n'), bom, be)),
      fc.string({ maxLength: 64, unit: 'binary' }).map((s) => new TextEncoder().encode(s)),
    );
    await fc.assert(fc.asyncProperty(bytes, name, async (b, n) => void (await readTyped(b, n))), runs(1000));
  });

  it('UTF-16 files read as the same rows as their UTF-8 text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ prompt: fc.string({ minLength: 1, maxLength: 12 }), completion: fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s.trim() !== '') }), { minLength: 1, maxLength: 4 }), fc.boolean(), async (rs, be) => {
        const text = rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
        const plain = await readTyped(text, 'train.jsonl');
        const wide = await readTyped(utf16(text, true, be), 'train.jsonl');
        if (plain instanceof GradPruneError) expect(wide).toBeInstanceOf(GradPruneError);
        else expect((wide as Dataset).examples).toEqual(plain.examples);
      }),
      runs(200),
    );
  });
});
