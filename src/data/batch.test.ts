// Seeded splits, batching and padding, the endless training iterator, and the preview.
import { beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { openFolder } from '../model/node-files';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer';
import { fixtureDir } from '../testing/paths';
import { batchIterator, batchOfRows, buildExamples, evalBatches, lengthHistogram, makeBatch, previewDataset, readDataset, sliceRows, splitTrainHeldOut, type TokenizedExample } from './index';

const row = (line: number, len: number): TokenizedExample => ({
  line,
  inputIds: Array.from({ length: len }, (_, t) => 100 + line * 10 + t),
  lossMask: Array.from({ length: len }, (_, t) => (t >= len - 2 ? 1 : 0)),
  promptLength: len - 2,
  truncated: false,
});
const rows = (n: number) => Array.from({ length: n }, (_, i) => row(i + 1, 3 + (i % 4)));

describe('splitTrainHeldOut', () => {
  const items = Array.from({ length: 100 }, (_, i) => i);

  it('is a partition, the same for the same seed, different for another seed, and keeps file order', () => {
    const a = splitTrainHeldOut(items, { heldOut: 0.1, seed: 7 });
    const b = splitTrainHeldOut(items, { heldOut: 0.1, seed: 7 });
    const c = splitTrainHeldOut(items, { heldOut: 0.1, seed: 8 });
    expect(a).toEqual(b);
    expect(a.heldOut).toHaveLength(10);
    expect(a.train).toHaveLength(90);
    expect([...a.train, ...a.heldOut].sort((x, y) => x - y)).toEqual(items);
    expect(c.heldOut).not.toEqual(a.heldOut);
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    expect(a.heldOut).toEqual([...a.heldOut].sort((x, y) => x - y));
    expect(a.heldOut).not.toEqual(items.slice(0, 10)); // chosen at random, not the first rows
  });

  it('takes a count too; holding out everything is refused', () => {
    expect(splitTrainHeldOut(items, { heldOut: 25, seed: 1 }).heldOut).toHaveLength(25);
    expect(splitTrainHeldOut(items, { heldOut: 0, seed: 1 }).train).toEqual(items);
    expect(() => splitTrainHeldOut(items, { heldOut: 100, seed: 1 })).toThrow(GradPruneError);
    expect(() => splitTrainHeldOut(items, { heldOut: 2.5, seed: 1 })).toThrow(/fraction in \[0, 1\) or a whole count/);
  });
});

describe('batches', () => {
  it('right-pads to the longest row with the pad id and mask 0', () => {
    const b = makeBatch([row(1, 3), row(2, 5)], { padTokenId: 9 });
    expect([b.B, b.T]).toEqual([2, 5]);
    expect(b.inputIds).toBeInstanceOf(Int32Array);
    expect(Array.from(b.inputIds)).toEqual([110, 111, 112, 9, 9, 120, 121, 122, 123, 124]);
    expect(Array.from(b.lossMask)).toEqual([0, 1, 1, 0, 0, 0, 0, 0, 1, 1]);
    expect(b.lengths).toEqual([3, 5]);
    expect(b.lines).toEqual([1, 2]);
  });

  it('pads to a fixed length when asked, and refuses a row longer than it', () => {
    expect(makeBatch([row(1, 3)], { padTokenId: 0, seqLen: 8 }).T).toBe(8);
    expect(() => makeBatch([row(1, 9)], { padTokenId: 0, seqLen: 8 })).toThrow(/A row of 9 tokens \(line 1\) does not fit the fixed sequence length 8/);
  });

  it('without shuffling: file order, B at a time, wrapping into the next epoch', () => {
    const it = batchIterator(rows(5), { batchSize: 2, padTokenId: 0, shuffle: false });
    const seen = Array.from({ length: 4 }, () => it.next());
    expect(seen.map((b) => b.lines)).toEqual([
      [1, 2],
      [3, 4],
      [5, 1],
      [2, 3],
    ]);
    expect(seen.map((b) => [b.epoch, b.step])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 3],
    ]);
    expect(it.step).toBe(4);
  });

  it('shuffled: each epoch is a permutation, reshuffled per epoch, reproducible from the seed', () => {
    const lines = (seed: number) => {
      const it = batchIterator(rows(6), { batchSize: 3, padTokenId: 0, seed });
      return Array.from({ length: 6 }, () => it.next().lines).flat();
    };
    const a = lines(3);
    expect(lines(3)).toEqual(a);
    expect(lines(4)).not.toEqual(a);
    const epochs = [a.slice(0, 6), a.slice(6, 12), a.slice(12, 18)];
    for (const e of epochs) expect([...e].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(epochs.map((e) => e.join(','))).size).toBeGreaterThan(1);
  });

  it('skip(k) then next() gives the batches a straight iterator gives from the k-th on (a resumed run trains on the same data)', () => {
    for (const shuffle of [true, false]) {
      const straight = batchIterator(rows(7), { batchSize: 3, padTokenId: 0, seed: 5, shuffle });
      const all = Array.from({ length: 9 }, () => straight.next());
      for (const k of [0, 1, 2, 5]) {
        const resumed = batchIterator(rows(7), { batchSize: 3, padTokenId: 0, seed: 5, shuffle });
        resumed.skip(k);
        expect(resumed.step).toBe(k);
        expect(Array.from({ length: 9 - k }, () => resumed.next())).toEqual(all.slice(k));
      }
    }
  });

  it('evalBatches gives every row once in order, the last batch short', () => {
    const batches = [...evalBatches(rows(5), { batchSize: 2, padTokenId: 0 })];
    expect(batches.map((b) => b.lines)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches[2].B).toBe(1);
  });

  it('an empty training set is refused', () => {
    expect(() => batchIterator([], { batchSize: 2, padTokenId: 0 })).toThrow(/no training examples/);
  });
});

describe('preview', () => {
  let tok: TextTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
  });

  it('shows the first rows token by token with prompt/target flags, counts, a histogram and the rejects', async () => {
    const text = ['{"prompt": "Say hi.", "completion": " Hi"}', '{"prompt": "x"}', '{"prompt": "Count.", "completion": " One two three"}'].join('\n');
    const set = buildExamples(await readDataset(new Blob([text]), 'p.jsonl'), tok, { maxSeqLen: 64 });
    const p = previewDataset(set, tok, { rows: 1 });
    expect(p.rows).toHaveLength(1);
    const tokens = p.rows[0].tokens;
    // The token texts read back as the decoded row (SentencePiece shows the space after <s> as its decoder does).
    expect(tokens.map((t) => t.text).join('')).toBe(tok.decode(set.examples[0].inputIds, { skipSpecialTokens: false }));
    expect(tokens.map((t) => t.text).join('')).toBe('<s> Say hi. Hi</s>');
    expect(tokens.filter((t) => t.target).map((t) => t.text).join('')).toBe(' Hi</s>');
    expect(tokens.findIndex((t) => t.target)).toBe(tok.encode('Say hi.').length);
    expect(p.stats).toMatchObject({ rows: 3, examples: 2, rejected: 1 });
    expect(p.rejected).toEqual([{ line: 2, where: 'line 2', reason: 'the completion (completion) is missing' }]);
    expect(p.histogram.counts.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('histogram bins cover every length', () => {
    const h = lengthHistogram([1, 2, 2, 10, 39], 4);
    expect(h.edges).toEqual([0, 10, 20, 30, 40]);
    expect(h.counts).toEqual([3, 1, 0, 1]);
  });
});

describe('batchOfRows and sliceRows', () => {
  it('pad explicit rows once, with the pad id given, and slice rows without re-padding', () => {
    const b = batchOfRows([[5, 6], [7, 8, 9]], [[0, 1], [0, 1, 1]], 3);
    expect(b).toEqual({ B: 2, T: 3, inputIds: Int32Array.of(5, 6, 3, 7, 8, 9), lossMask: Int32Array.of(0, 1, 0, 0, 1, 1), padTokenId: 3, lengths: [2, 3] });
    const second = sliceRows(b, 1, 2);
    expect(second).toEqual({ B: 1, T: 3, inputIds: Int32Array.of(7, 8, 9), lossMask: Int32Array.of(0, 1, 1), padTokenId: 3, lengths: [3] });
    expect(second.inputIds.buffer).toBe(b.inputIds.buffer); // a view, not a copy
    expect(() => batchOfRows([[1, 2]], [[1]])).toThrow(/different lengths/);
  });

  it('makeBatch records the pad id it padded with', () => {
    const b = makeBatch([{ line: 1, inputIds: [4, 5], lossMask: [0, 1], promptLength: 1, truncated: false }, { line: 2, inputIds: [6], lossMask: [1], promptLength: 0, truncated: false }], { padTokenId: 9 });
    expect(b).toMatchObject({ B: 2, T: 2, padTokenId: 9, lengths: [2, 1] });
    expect(Array.from(b.inputIds)).toEqual([4, 5, 6, 9]);
  });
});
