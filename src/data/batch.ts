// Tokenized examples → (B, T) int32 batches, right-padded (pad id, mask 0), as the GPU engine takes them. T is the
// longest row of the batch unless a fixed seqLen is given.
import { GradPruneError } from '../errors';
import { shuffled } from './split';
import type { Batch, TokenBatch, TokenizedExample } from './types';

export interface BatchShape {
  /** The id written into padding (TokenizedSet.padTokenId); padding is never trained on (mask 0). */
  padTokenId: number;
  /** Pad every batch to this many tokens instead of the longest row. */
  seqLen?: number;
}

export function makeBatch(rows: readonly TokenizedExample[], shape: BatchShape, meta: { epoch: number; step: number } = { epoch: 0, step: 0 }): Batch {
  const B = rows.length;
  const longest = rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
  const T = shape.seqLen ?? longest;
  if (longest > T) {
    const row = rows.find((r) => r.inputIds.length > T)!;
    throw new GradPruneError('input', `A row of ${row.inputIds.length} tokens (line ${row.line}) does not fit the fixed sequence length ${T}.`, {
      subject: 'seqLen',
      hint: 'Tokenize with maxSeqLen no larger than the batch sequence length.',
    });
  }
  const inputIds = new Int32Array(B * T).fill(shape.padTokenId); // (B, T)
  const lossMask = new Int32Array(B * T); // (B, T)
  rows.forEach((r, b) => {
    inputIds.set(r.inputIds, b * T);
    lossMask.set(r.lossMask, b * T);
  });
  return { B, T, inputIds, lossMask, padTokenId: shape.padTokenId, lengths: rows.map((r) => r.inputIds.length), lines: rows.map((r) => r.line), epoch: meta.epoch, step: meta.step };
}

/** Rows [from, to) of a batch, as they are (views of its arrays, no re-padding). */
export function sliceRows<X extends TokenBatch>(batch: X, from: number, to: number): TokenBatch {
  const { T } = batch;
  return {
    B: to - from,
    T,
    inputIds: batch.inputIds.subarray(from * T, to * T),
    lossMask: batch.lossMask.subarray(from * T, to * T),
    padTokenId: batch.padTokenId,
    ...(batch.lengths ? { lengths: batch.lengths.slice(from, to) } : {}),
  };
}

/**
 * A batch of explicit rows (tests, benchmarks, a single prompt): right-padded to the longest row with `padTokenId`
 * (default 0), mask 0 there.
 */
export function batchOfRows(ids: readonly ArrayLike<number>[], lossMask: readonly ArrayLike<number>[], padTokenId = 0): TokenBatch {
  if (ids.length !== lossMask.length || ids.some((row, b) => row.length !== lossMask[b].length)) {
    throw new Error(`batchOfRows: ${ids.length} rows of ids and ${lossMask.length} loss masks of different lengths.`);
  }
  const B = ids.length;
  const T = ids.reduce((m, row) => Math.max(m, row.length), 0);
  const inputIds = new Int32Array(B * T).fill(padTokenId); // (B, T)
  const mask = new Int32Array(B * T); // (B, T)
  ids.forEach((row, b) => {
    inputIds.set(Array.from(row), b * T);
    mask.set(Array.from(lossMask[b]), b * T);
  });
  return { B, T, inputIds, lossMask: mask, padTokenId, lengths: ids.map((row) => row.length) };
}

export interface BatchIteratorOptions extends BatchShape {
  batchSize: number;
  /** Shuffle each epoch (default true); false: file order, batchSize rows at a time, wrapping around. */
  shuffle?: boolean;
  /** Seed of the shuffles; epoch e is shuffled with a seed derived from (seed, e). */
  seed?: number;
}

export interface BatchIterator {
  /** The next batch; always batchSize rows (a batch that runs past the end of an epoch continues into the next). */
  next(): Batch;
  /** Move past the next `n` batches without building them (a resumed run skips the ones it trained on). */
  skip(n: number): void;
  /** Batches handed out (or skipped) so far. */
  readonly step: number;
}

const epochSeed = (seed: number, epoch: number) => (Math.imul(epoch + 1, 0x9e3779b1) ^ seed) >>> 0;

/** An endless stream of training batches: the trainer pulls N steps, cycling epochs (reshuffled per epoch). */
export function batchIterator(examples: readonly TokenizedExample[], opts: BatchIteratorOptions): BatchIterator {
  if (examples.length === 0) throw new GradPruneError('dataset', 'There are no training examples to batch.', { hint: 'Load a dataset with usable rows.' });
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new GradPruneError('input', `Batch size must be a whole number ≥ 1 (got ${opts.batchSize}).`, { subject: 'batchSize' });
  const shuffle = opts.shuffle ?? true;
  const seed = opts.seed ?? 0;
  const orderOf = (epoch: number) => (shuffle ? shuffled(examples, epochSeed(seed, epoch)) : examples.slice());
  let epoch = 0;
  let order = orderOf(0);
  let cursor = 0;
  let step = 0;
  const take = (): TokenizedExample => {
    if (cursor === order.length) {
      epoch++;
      order = orderOf(epoch);
      cursor = 0;
    }
    return order[cursor++];
  };
  return {
    next() {
      const firstEpoch = epoch;
      const rows = Array.from({ length: opts.batchSize }, take);
      return makeBatch(rows, opts, { epoch: firstEpoch, step: step++ });
    },
    skip(n) {
      for (let i = 0; i < n * opts.batchSize; i++) take();
      step += n;
    },
    get step() {
      return step;
    },
  };
}

/** Every example once, in order, batchSize at a time (the last batch may be smaller): for evaluation. */
export function* evalBatches(examples: readonly TokenizedExample[], opts: BatchShape & { batchSize: number }): Generator<Batch> {
  for (let i = 0, step = 0; i < examples.length; i += opts.batchSize, step++) {
    yield makeBatch(examples.slice(i, i + opts.batchSize), opts, { epoch: 0, step });
  }
}
