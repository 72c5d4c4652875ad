// Held-out loss / perplexity against the fixtures' reference loss (transformers + PEFT), computed from the CPU
// reference's logits through the evaluation's own log-softmax and token weighting.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { loadFixtureModel, openReference } from '../nn/reference/fixture';
import { loraState, ReferenceModel } from '../nn/reference/model';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { referenceScoringModel } from './engines';
import { heldOutLoss } from './loss';
import type { MaskedBatch, ScoringModel } from './scoring';

/** Rows [from, to) of a (B, T) batch. */
const rows = (ids: Int32Array, mask: Int32Array, T: number, from: number, to: number): MaskedBatch => ({
  inputIds: ids.slice(from * T, to * T),
  lossMask: mask.slice(from * T, to * T),
  B: to - from,
  T,
  padTokenId: 0,
});

describe.each(SCORED_FIXTURE_MODELS)('held-out loss on %s', (name) => {
  it('equals the reference loss of lora_grad.safetensors, in one batch or split unevenly', async () => {
    const dir = fixtureDir(name);
    const { config, weights } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n));
    const model = referenceScoringModel(new ReferenceModel(weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha)), 64);
    const ids = await ref.readI32('input_ids');
    const mask = await ref.readI32('loss_mask');
    const [B, T] = ref.info('input_ids').shape;
    const expected = (await ref.readF32('loss'))[0];
    // Position t counts iff mask[t+1] == 1: count the targets the README's way, independently of the code.
    let targets = 0;
    for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) targets += mask[b * T + t];

    const whole = await heldOutLoss(model, [rows(ids, mask, T, 0, B)]);
    expect(Math.abs(whole.loss - expected) / expected).toBeLessThanOrEqual(1e-5);
    expect(whole.tokens).toBe(targets);
    expect(whole.rows).toBe(B);
    expect(whole.perplexity).toBeCloseTo(Math.exp(expected), 3);

    // Token-weighted over batches (rows 0 | 1..2), not a mean of batch means.
    const split = await heldOutLoss(model, [rows(ids, mask, T, 0, 1), rows(ids, mask, T, 1, B)]);
    expect(Math.abs(split.loss - expected) / expected).toBeLessThanOrEqual(1e-5);
    expect(split.tokens).toBe(targets);
  });
});

describe('heldOutLoss', () => {
  const fused = (results: Array<{ loss: number; count: number }>): ScoringModel => {
    let i = 0;
    return {
      maxLength: 8,
      tokenLogProbs: () => Promise.reject(new Error('not used')),
      maskedLoss: async () => results[i++],
    };
  };
  const batch = (T = 4): MaskedBatch => ({ inputIds: new Int32Array(T), lossMask: new Int32Array(T), B: 1, T, padTokenId: 0 });

  it("weights a fused loss by each batch's token count", async () => {
    const r = await heldOutLoss(fused([{ loss: 1, count: 3 }, { loss: 2, count: 1 }, { loss: 0, count: 0 }]), [batch(), batch(), batch()]);
    expect(r.loss).toBeCloseTo(1.25, 12);
    expect(r.tokens).toBe(4);
    expect(r.perplexity).toBeCloseTo(Math.exp(1.25), 10);
  });

  it('refuses a set with no target tokens', async () => {
    const err = await heldOutLoss(fused([{ loss: 0, count: 0 }]), [batch()]).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('dataset');
    expect(err.message).toMatch(/no target tokens/);
  });

  it('refuses batches longer than the model', async () => {
    const err = await heldOutLoss(fused([{ loss: 1, count: 1 }]), [batch(9)]).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/9 tokens per row is longer than the model's 8/);
  });

  it('reports non-finite losses as a numeric error', async () => {
    const err = await heldOutLoss(fused([{ loss: NaN, count: 2 }]), [batch()]).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('numeric');
  });
});
