// A batch written into the engine's fixed (B, T) host arrays, checked first: rows and tokens within the shape the job
// was set up for, every id (the pad id too) inside the vocabulary, so a tokenizer that does not match the model is
// named before anything reaches the GPU.

import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';

/**
 * Write a batch of at most B rows of at most T tokens into (B, T) ids and loss-mask arrays, as it is: positions past
 * its T and rows past its B are padding (its pad id, loss mask 0).
 */
export function packBatch(batch: TokenBatch, shape: { B: number; T: number; vocabSize: number }, hostIds: Int32Array, hostMask: Int32Array): void {
  const { B, T, vocabSize: V } = shape;
  if (batch.inputIds.length !== batch.B * batch.T || batch.lossMask.length !== batch.B * batch.T) {
    throw new Error(`A (${batch.B}, ${batch.T}) batch has ${batch.inputIds.length} ids and ${batch.lossMask.length} loss-mask entries.`);
  }
  if (batch.B > B) {
    throw new GradPruneError('input', `A batch has ${batch.B} rows; the engine was set up for at most ${B}.`, { subject: 'batch' });
  }
  for (let b = 0; b < batch.B; b++) {
    const length = batch.lengths?.[b] ?? batch.T;
    if (length > T) {
      throw new GradPruneError('input', `Row ${b} of the batch has ${length} tokens; the engine was set up for at most ${T}.`, {
        subject: `row ${b}`,
        hint: 'Truncate examples to the sequence length.',
      });
    }
  }
  if (!(Number.isInteger(batch.padTokenId) && batch.padTokenId >= 0 && batch.padTokenId < V)) {
    throw new GradPruneError('input', `The pad token id ${batch.padTokenId} is outside the vocabulary (0..${V - 1}).`, { subject: 'padTokenId', hint: 'The tokenizer does not match the model.' });
  }
  const width = Math.min(batch.T, T); // past a row's length there is only padding
  hostIds.fill(batch.padTokenId);
  hostMask.fill(0);
  for (let b = 0; b < batch.B; b++) {
    for (let t = 0; t < width; t++) {
      const id = batch.inputIds[b * batch.T + t];
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new GradPruneError('input', `Token id ${id} in row ${b}, position ${t} is outside the vocabulary (0..${V - 1}).`, {
          subject: `row ${b}`,
          hint: 'The tokenizer does not match the model.',
        });
      }
      hostIds[b * T + t] = id;
      hostMask[b * T + t] = batch.lossMask[b * batch.T + t] ? 1 : 0;
    }
  }
}
