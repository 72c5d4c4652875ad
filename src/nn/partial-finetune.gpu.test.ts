// Partial-layer fine-tuning on the GPU (lm_head + the last k layers' linear weights, AdamW in place) against the CPU
// reference: its frozen-weight and lm_head gradients (checked by finite differences in reference/weight-grads.test.ts
// and reference/lm-head-grad.test.ts) driving a plain AdamW loop written out here, f64 arithmetic, weights stored f32.
// Hyper-parameters: lr 1e-3 constant, betas (0.9, 0.999), eps 1e-8, weight decay 0.1, global-norm clip 1.0 (the
// pre-clip norms here are well above 1, so clipping acts); two steps, the second on another batch.
// Tolerances: per-step loss relative 1e-5 (seen ≤ 8e-8), pre-clip norm 1e-4 (seen ≤ 3e-7); the weights' change from
// the checkpoint, relL2 ≤ 2e-3 per tensor (AdamW's first steps move each element by ≈ lr·sign(g), so elements whose
// gradient is near 0 carry the float differences; seen ≤ 6.6e-4, tiny-qwen2's down_proj); the loss after the two
// updates relative 1e-5 (seen ≤ 5.3e-7).
import { describe, expect, it } from 'vitest';
import type { TokenBatch } from '../data/types';
import { readback } from '../gpu/tensor';
import { LINEAR_MODULES, linearWeightName } from '../model/config';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { GpuModel } from './model';
import { partialFinetuneMemory, partialJobOptions, PartialTrainer } from './partial-finetune';
import { relError, relL2 } from './reference/compare';
import { loraGradCase } from './reference/fixture';
import { ReferenceModel, type LinearGrad } from './reference/model';
import type { ModelWeights } from './reference/weights';

const gpu = await testGpu();

const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };

/** The fixture's rows reversed, every position after the first a target. */
function secondBatch(b: TokenBatch): TokenBatch {
  const inputIds = b.inputIds.slice().reverse();
  return { ...b, inputIds, lossMask: Int32Array.from(inputIds, (_, i) => (i % b.T === 0 ? 0 : 1)) };
}

/** The CPU side: reference weights with lm_head untied (its own copy), trained in place by clip + AdamW. */
class ReferencePartial {
  readonly w: ModelWeights;
  readonly model: ReferenceModel;
  private readonly state = new Map<string, { m: Float64Array; v: Float64Array }>();
  private t = 0;

  constructor(w: ModelWeights, readonly layers: number[]) {
    this.w = { ...w, lmHead: w.lmHead.slice(), layers: w.layers.map((l) => ({ ...l, linear: Object.fromEntries(Object.entries(l.linear).map(([m, p]) => [m, { W: p.W.slice(), b: p.b ? p.b.slice() : null }])) as typeof l.linear })) };
    this.model = new ReferenceModel(this.w);
  }

  /** name → [stored f32 values, gradient] of every trained tensor. */
  private trained(frozen: { grads: Map<string, LinearGrad>; lmHead: Float64Array }): Array<[string, Float32Array, Float64Array]> {
    const out: Array<[string, Float32Array, Float64Array]> = [];
    for (const l of this.layers) {
      for (const m of LINEAR_MODULES) {
        const name = linearWeightName(l, m);
        const p = this.w.layers[l].linear[m];
        const g = frozen.grads.get(name)!;
        out.push([name, p.W, g.dW]);
        if (p.b) out.push([name.replace(/\.weight$/, '.bias'), p.b, g.db!]);
      }
    }
    out.push(['lm_head.weight', this.w.lmHead, frozen.lmHead]);
    return out;
  }

  step(b: TokenBatch): { loss: number; norm: number } {
    const frozen = { layers: new Set(this.layers), grads: new Map<string, LinearGrad>(), lmHead: new Float64Array(this.w.lmHead.length) };
    const { loss } = this.model.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
    const tensors = this.trained(frozen);
    let sq = 0;
    for (const [, , g] of tensors) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const clip = Math.min(1, HYPER.maxGradNorm / (norm + 1e-6));
    this.t++;
    const bc1 = 1 - HYPER.beta1 ** this.t, bc2 = 1 - HYPER.beta2 ** this.t;
    for (const [name, p, g] of tensors) {
      let s = this.state.get(name);
      if (!s) this.state.set(name, (s = { m: new Float64Array(p.length), v: new Float64Array(p.length) }));
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * clip;
        s.m[i] = HYPER.beta1 * s.m[i] + (1 - HYPER.beta1) * gi;
        s.v[i] = HYPER.beta2 * s.v[i] + (1 - HYPER.beta2) * gi * gi;
        const w = p[i] * (1 - HYPER.lr * HYPER.weightDecay);
        p[i] = w - (HYPER.lr / bc1) * (s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(bc2) + HYPER.eps));
      }
    }
    return { loss, norm };
  }

  get(name: string): Float32Array {
    if (name === 'lm_head.weight') return this.w.lmHead;
    const m = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(weight|bias)$/.exec(name)!;
    const p = this.w.layers[Number(m[1])].linear[m[2] as (typeof LINEAR_MODULES)[number]];
    return m[3] === 'weight' ? p.W : p.b!;
  }
}

const delta = (a: Float32Array, b: Float32Array) => Float64Array.from(a, (x, i) => x - b[i]);

describe.each([
  { name: 'tiny-llama', k: 1 },
  { name: 'tiny-qwen2', k: 1 }, // tied embeddings (lm_head untied) and q/k/v biases
])('partial-layer fine-tuning on the GPU: $name, lm_head + last $k layer(s)', ({ name, k }) => {
  it('two clipped AdamW steps update the weights and give the losses the CPU reference does', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir(name));
    const c = fm.config;
    const layers = Array.from({ length: k }, (_, i) => c.numLayers - k + i);
    const model = await GpuModel.load(gpu, c, fm.store, { batchSize: B, seqLen: T, weights: 'f32', residency: 'resident', ...partialJobOptions(c, k) });
    // The job holds exactly the estimate's extra: grads + the untied copy (the moments belong to the trainer).
    const plain = GpuModel.create(model.weights, { batchSize: B, seqLen: T, training: true, lora: null });
    const mem = partialFinetuneMemory(c, k);
    expect(model.jobBytes - plain.jobBytes).toBe(mem.gradBytes + mem.untiedCopyBytes);
    plain.destroy();
    const trainer = new PartialTrainer(model, {
      schedule: { lr: HYPER.lr, warmupSteps: 0, decay: 'constant' },
      adamw: { beta1: HYPER.beta1, beta2: HYPER.beta2, eps: HYPER.eps, weightDecay: HYPER.weightDecay },
      maxGradNorm: HYPER.maxGradNorm,
    });
    const cpu = new ReferencePartial(fm.weights, layers);
    let firstLoss = NaN;
    for (const b of [batch, secondBatch(batch)]) {
      const got = await trainer.trainStep(b);
      if (got.step === 0) firstLoss = got.loss;
      const want = cpu.step(b);
      expect(want.norm).toBeGreaterThan(HYPER.maxGradNorm); // clipping acts
      expect(relError(got.loss, want.loss), `step ${got.step} loss`).toBeLessThanOrEqual(1e-5);
      expect(relError(got.gradNorm, want.norm), `step ${got.step} norm`).toBeLessThanOrEqual(1e-4);
    }
    const trained = await trainer.readTrained();
    expect([...trained.keys()].sort()).toEqual([
      'lm_head.weight',
      ...layers.flatMap((l) => LINEAR_MODULES.flatMap((m) => [linearWeightName(l, m), ...(c.bias[m] ? [linearWeightName(l, m).replace(/\.weight$/, '.bias')] : [])])),
    ].sort());
    const original = (n: string): Float32Array => {
      if (n === 'lm_head.weight') return fm.weights.lmHead;
      const m = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(weight|bias)$/.exec(n)!;
      const p = fm.weights.layers[Number(m[1])].linear[m[2] as (typeof LINEAR_MODULES)[number]];
      return m[3] === 'weight' ? p.W : p.b!;
    };
    for (const [n, values] of trained) {
      const d = delta(values, original(n));
      // Qwen2's k bias adds q·b_k to every score of a query row, which softmax ignores: its gradient is 0 up to
      // rounding, and AdamW scales rounding noise to ±lr. Only the step size bounds it (two steps, |Δ| ≤ ~2·lr).
      if (n.endsWith('k_proj.bias')) {
        expect(Math.max(...d.map(Math.abs)), n).toBeLessThanOrEqual(3 * HYPER.lr);
        continue;
      }
      expect(d.some((x) => x !== 0), n).toBe(true);
      expect(relL2(d, delta(cpu.get(n), original(n))), `${n} change`).toBeLessThanOrEqual(2e-3);
    }
    // The frozen rest is untouched: the input embedding (tied: the lm_head was untied from it) and a layer below.
    expect(await readEmbedding(model)).toEqual(fm.weights.embed);
    const frozenLayer = model.weights.layer(c.numLayers - k - 1).linear.q_proj.W;
    expect(await readback(gpu.device, frozenLayer)).toEqual(fm.weights.layers[c.numLayers - k - 1].linear.q_proj.W);
    // The loss after both updates, forward only.
    const after = await model.run(batch);
    const wantAfter = cpu.model.lossAndGrads(batch.inputIds, batch.lossMask, B, T).loss;
    expect(relError(after.loss, wantAfter)).toBeLessThanOrEqual(1e-5);
    expect(after.loss).toBeLessThan(firstLoss); // two steps lowered the loss on the batch the first one saw
    trainer.destroy();
    model.destroy();
  });
});

async function readEmbedding(model: GpuModel): Promise<Float32Array> {
  const c = model.config;
  const out = new Float32Array(c.vocabSize * c.hiddenSize);
  for (const p of model.weights.embedParts) out.set(await readback(gpu.device, p.tensor), p.rowStart * c.hiddenSize);
  return out;
}
