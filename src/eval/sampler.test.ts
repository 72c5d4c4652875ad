// The one sampler: greedy ties to the lowest id (torch.argmax); sampled draws follow softmax(logits / T) after top-k,
// then top-p, as Hugging Face's TopK / TopP warpers do; bad options are refused.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { seededRandom } from '../random';
import { argmaxId, checkSamplingOptions, pickToken, type SamplingOptions } from './sampler';

/** Probabilities 0.1, 0.2, 0.3, 0.4 for ids 0..3 at temperature 1. */
const logits = Float32Array.from([1, 2, 3, 4].map(Math.log));
const never = () => {
  throw new Error('greedy decoding must not draw');
};

/** Share of each id in `n` seeded draws. */
function frequencies(opts: SamplingOptions, n = 40_000, V = 4): number[] {
  const rand = seededRandom(7);
  const counts = new Array(V).fill(0);
  for (let i = 0; i < n; i++) counts[pickToken(logits, opts, rand)]++;
  return counts.map((c) => c / n);
}

function expectClose(got: number[], want: number[]) {
  got.forEach((g, i) => expect(Math.abs(g - want[i]), `id ${i}: ${g} vs ${want[i]}`).toBeLessThan(0.012));
}

describe('argmaxId / greedy', () => {
  it('picks the largest logit, the lowest id among equals, without drawing', () => {
    expect(argmaxId(Float32Array.from([1, 3, 3, 2]))).toBe(1);
    expect(argmaxId(Float32Array.from([-2, -1, -5]))).toBe(1);
    expect(pickToken(Float32Array.from([0.1, 3, -1, 3, 0]), {}, never)).toBe(1);
    expect(pickToken(Float32Array.from([0.1, 3, -1, 3, 0]), { temperature: 0, topK: 1, topP: 0.5 }, never)).toBe(1);
  });
});

describe('pickToken sampling', () => {
  it('maps the uniform draw onto candidates in order of decreasing probability (ties: lower id first)', () => {
    // Candidates 3, 2, 1, 0 with probabilities 0.4, 0.3, 0.2, 0.1.
    expect([0.05, 0.45, 0.75, 0.95].map((u) => pickToken(logits, { temperature: 1 }, () => u))).toEqual([3, 2, 1, 0]);
    expect([0.25, 0.75].map((u) => pickToken(Float32Array.from([0, 0]), { temperature: 1 }, () => u))).toEqual([0, 1]);
  });

  it('draws with the probabilities of softmax(logits / temperature)', () => {
    expectClose(frequencies({ temperature: 1 }), [0.1, 0.2, 0.3, 0.4]);
    // T = 2: p ∝ sqrt(1, 2, 3, 4).
    const s = [1, 2, 3, 4].map(Math.sqrt);
    const z = s.reduce((a, b) => a + b);
    expectClose(frequencies({ temperature: 2 }), s.map((x) => x / z));
  });

  it('top-k keeps the k most likely tokens, renormalised', () => {
    expectClose(frequencies({ temperature: 1, topK: 2 }), [0, 0, 3 / 7, 4 / 7]);
    expectClose(frequencies({ temperature: 1, topK: 10 }), [0.1, 0.2, 0.3, 0.4]);
  });

  it('top-p keeps the most likely tokens until their mass reaches p, renormalised', () => {
    expectClose(frequencies({ temperature: 1, topP: 0.6 }), [0, 0, 3 / 7, 4 / 7]);
    expectClose(frequencies({ temperature: 1, topP: 0.75 }), [0, 2 / 9, 3 / 9, 4 / 9]);
    expectClose(frequencies({ temperature: 1, topP: 0.05 }), [0, 0, 0, 1]);
  });

  it('applies top-k before top-p (top-p sees the renormalised top-k)', () => {
    // Alone, top-p 0.55 keeps {3, 2} (0.4 < 0.55 ≤ 0.7); after top-k 2, id 3 alone has 4/7 ≥ 0.55.
    expectClose(frequencies({ temperature: 1, topP: 0.55 }), [0, 0, 3 / 7, 4 / 7]);
    expectClose(frequencies({ temperature: 1, topK: 2, topP: 0.55 }), [0, 0, 0, 1]);
  });
});

describe('checkSamplingOptions', () => {
  it.each([
    [{ temperature: -1 }, /temperature must be 0 or more \(got -1\)/],
    [{ temperature: Number.NaN }, /temperature must be 0 or more/],
    [{ temperature: Infinity }, /temperature must be 0 or more/],
    [{ topK: 1.5 }, /top-k must be a whole number ≥ 0 \(got 1\.5\)/],
    [{ topK: -1 }, /top-k must be a whole number/],
    [{ topP: 0 }, /top-p must be above 0 and at most 1 \(got 0\)/],
    [{ topP: 1.5 }, /top-p must be above 0 and at most 1/],
    [{ topP: Number.NaN }, /top-p must be above 0/],
  ])('refuses %o', (opts, message) => {
    const err = (() => {
      try {
        checkSamplingOptions(opts);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as Error).message).toMatch(message);
  });

  it('accepts the defaults and the edges', () => {
    expect(() => checkSamplingOptions({})).not.toThrow();
    expect(() => checkSamplingOptions({ temperature: 0, topK: 0, topP: 1 })).not.toThrow();
  });
});
