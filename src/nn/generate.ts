// Next-token logits with a KV cache, on the weights (and adapters) of a loaded GpuModel: one token per step, so a
// generation of n tokens costs n single-token passes, not n full forwards. It is the GPU's NextTokenModel
// (src/eval/generation.ts: generateIds chooses the tokens with the one sampler, src/eval/sampler.ts).
// Per token: embedding → for each layer: norm, q/k/v (+LoRA), RoPE at the token's position, append k and v to the
// layer's cache, attention over the cache, o, residual, MLP → final norm → lm_head. The prompt is fed the same way.
// Shapes: one sequence; C hidden, NH / NKV heads, HD head_dim, F intermediate, V vocab, P = maxLength positions.

import { GradPruneError } from '../errors';
import type { KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, view, type Tensor } from '../gpu/tensor';
import type { LinearModule } from '../model/config';
import {
  AttentionDecode, embeddingForwardParts, linearForward, loraForward, residualForward, rmsnormForward, ropeForward, ropeTables, swigluForward,
} from './kernels';
import { adapterName, loraScale } from './lora';
import { GpuModel } from './model';

/** One segment of a token step: kernel calls in one pass, then buffer copies (appending k and v to the cache). */
interface Segment {
  calls: KernelCall[];
  copies: Array<{ src: Tensor; dst: Tensor; bytes: number }>;
}

export class Generator {
  private readonly segments: Segment[] = [];
  private readonly owned: Tensor[] = [];
  private readonly id: Tensor; // (1) i32
  private readonly cos: Tensor; // (1, HD): the current position's row
  private readonly sin: Tensor;
  private readonly logits: Tensor; // (1, V)
  private readonly attention: AttentionDecode[] = [];
  private readonly table: { cos: Float32Array; sin: Float32Array };
  private readonly HD: number;
  /** The tokens whose k and v rows are in the cache, position by position. */
  private cached: number[] = [];
  readonly vocabSize: number;

  /** `maxLength`: the positions the cache holds (prompt and new tokens). The model may be loaded with B = T = 1. */
  constructor(readonly model: GpuModel, readonly maxLength: number) {
    const c = model.config;
    if (!Number.isInteger(maxLength) || maxLength <= 0 || maxLength > c.maxPositionEmbeddings) {
      throw new GradPruneError('input', `Generation length ${maxLength} must be between 1 and the model's ${c.maxPositionEmbeddings} positions.`, { subject: 'maxLength' });
    }
    const k = model.kernels;
    const C = c.hiddenSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize, P = maxLength;
    this.HD = HD;
    this.vocabSize = c.vocabSize;
    const t = (label: string, shape: number[], dtype: 'f32' | 'i32' = 'f32') => {
      const x = createTensor(model.gpu.device, `generate.${label}`, shape, dtype);
      this.owned.push(x);
      return x;
    };
    this.table = ropeTables(c.rope, HD, P);
    this.id = t('id', [1], 'i32');
    this.cos = t('cos', [1, HD]);
    this.sin = t('sin', [1, HD]);
    this.logits = t('logits', [1, c.vocabSize]);
    const x = t('x', [1, C]), x2 = t('x2', [1, C]), h = t('h', [1, C]), rstd = t('rstd', [1]), proj = t('proj', [1, C]);
    const qPre = t('q_pre', [1, NH, HD]), q = t('q', [1, NH, HD]), kPre = t('k_pre', [1, NKV, HD]), kNew = t('k', [1, NKV, HD]), vNew = t('v', [1, NKV, HD]);
    // Qwen3: q and k as projected, before the per-head norm.
    const qLin = c.qkNorm ? t('q_lin', [1, NH, HD]) : null, kLin = c.qkNorm ? t('k_lin', [1, NKV, HD]) : null;
    const rstdQ = c.qkNorm ? t('rstd_q', [1, NH]) : null, rstdK = c.qkNorm ? t('rstd_k', [1, NKV]) : null;
    const att = t('att', [1, NH, HD]), scores = t('scores', [NH, P]);
    const gate = t('gate', [1, F]), up = t('up', [1, F]), act = t('act', [1, F]);
    const r = model.lora?.rank ?? 0;
    const loraH = r > 0 ? t('lora_h', [1, r]) : null;
    const scale = model.lora ? loraScale(model.lora) : 0;
    const adapterOf = new Map(model.adapters.map((a) => [a.name, a]));
    const linear = (l: number, m: LinearModule, out: Tensor, inp: Tensor): KernelCall[] => {
      const p = model.weights.layer(l).linear[m];
      const calls = linearForward(k, out, inp, p.W, p.b);
      const ad = adapterOf.get(adapterName(l, m));
      if (ad) calls.push(...loraForward(k, out, loraH!, inp, ad.A, ad.B, scale));
      return calls;
    };
    const decodeShape = { P, NH, NKV, HD, window: c.slidingWindow };

    let seg: Segment = { calls: [...embeddingForwardParts(k, x, this.id, model.weights.embedParts)], copies: [] };
    for (let l = 0; l < c.numLayers; l++) {
      const p = model.weights.layer(l);
      /** q (or k) into RoPE's input: through the per-head norm where the model has one. */
      const qk = (m: 'q_proj' | 'k_proj', pre: Tensor, lin: Tensor | null, rstdH: Tensor | null, norm: Tensor | null): KernelCall[] =>
        lin ? [...linear(l, m, lin, h), ...rmsnormForward(k, pre, rstdH!, lin, norm!, c.rmsNormEps)] : linear(l, m, pre, h);
      const kCache = t(`k_cache.${l}`, [P, NKV, HD]), vCache = t(`v_cache.${l}`, [P, NKV, HD]);
      seg.calls.push(
        ...rmsnormForward(k, h, rstd, x, p.inputNorm, c.rmsNormEps),
        ...qk('q_proj', qPre, qLin, rstdQ, p.qNorm),
        ...qk('k_proj', kPre, kLin, rstdK, p.kNorm),
        ...linear(l, 'v_proj', vNew, h),
        ...ropeForward(k, q, qPre, this.cos, this.sin, 1, NH),
        ...ropeForward(k, kNew, kPre, this.cos, this.sin, 1, NKV),
      );
      const rowBytes = NKV * HD * 4;
      seg.copies.push({ src: kNew, dst: kCache, bytes: rowBytes }, { src: vNew, dst: vCache, bytes: rowBytes });
      this.segments.push(seg);
      const attn = new AttentionDecode(k, att, scores, q, kCache, vCache, decodeShape);
      this.attention.push(attn);
      seg = { calls: [attn.call], copies: [] };
      seg.calls.push(
        ...linear(l, 'o_proj', proj, att),
        ...residualForward(k, x2, x, proj),
        ...rmsnormForward(k, h, rstd, x2, p.postNorm, c.rmsNormEps),
        ...linear(l, 'gate_proj', gate, h),
        ...linear(l, 'up_proj', up, h),
        ...swigluForward(k, act, gate, up),
        ...linear(l, 'down_proj', proj, act),
        ...residualForward(k, x, x2, proj),
      );
    }
    // One row of logits: each lm_head part writes its own columns (part offsets are multiples of 64 entries, so aligned).
    const head = model.weights.lmHeadParts.flatMap((p) => linearForward(k, view(this.logits, p.rowStart, [1, p.tensor.shape[0]]), h, p.tensor, null));
    seg.calls.push(...rmsnormForward(k, h, rstd, x, model.finalNorm, c.rmsNormEps), ...head);
    this.segments.push(seg);
  }

  /**
   * Run token `id` at position `pos` and return the logits (V) of the next token. Positions before `pos` must have
   * been run; running an earlier position again rewinds the cache to it.
   */
  async nextLogits(id: number, pos: number): Promise<Float32Array> {
    await this.submit(id, pos);
    const logits = await readback(this.model.gpu.device, this.logits);
    this.model.gpu.throwIfFailed();
    return logits;
  }

  /** The logits after `ids`: only the tokens past what the cache already holds of `ids` are run. */
  async nextTokenLogits(ids: readonly number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new GradPruneError('input', 'Generation needs a prompt of at least one token.', { subject: 'prompt' });
    if (ids.length > this.maxLength) {
      throw new GradPruneError('input', `A sequence of ${ids.length} tokens does not fit the ${this.maxLength} positions this generator was set up for.`, {
        subject: 'maxLength',
        hint: 'Shorten the prompt or generate fewer tokens.',
      });
    }
    let from = 0;
    while (from < ids.length - 1 && from < this.cached.length && ids[from] === this.cached[from]) from++;
    for (let pos = from; pos < ids.length - 1; pos++) await this.submit(ids[pos], pos);
    return this.nextLogits(ids[ids.length - 1], ids.length - 1);
  }

  /**
   * Segment i (i < L) is the first to use layer i's weights: streamed weights are queued before it, with at most two
   * segments in flight (the staging of two layers); resident weights go in one submit.
   */
  private async submit(id: number, pos: number): Promise<void> {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new GradPruneError('input', `Token id ${id} is outside the vocabulary (0..${this.vocabSize - 1}).`, { subject: 'prompt' });
    }
    if (!Number.isInteger(pos) || pos < 0 || pos > this.cached.length) {
      throw new Error(`Position ${pos} cannot be run: the cache holds positions 0..${this.cached.length - 1}, and tokens go in one position at a time.`);
    }
    if (pos >= this.maxLength) {
      throw new GradPruneError('input', `Position ${pos} is past the ${this.maxLength} positions this generator was set up for.`, {
        subject: 'maxLength',
        hint: 'Shorten the prompt or generate fewer tokens.',
      });
    }
    const { device } = this.model.gpu;
    const HD = this.HD;
    upload(device, this.id, Int32Array.of(id));
    upload(device, this.cos, this.table.cos.subarray(pos * HD, (pos + 1) * HD));
    upload(device, this.sin, this.table.sin.subarray(pos * HD, (pos + 1) * HD));
    for (const a of this.attention) a.setPosition(pos);
    const { weights } = this.model;
    const inFlight: Promise<void>[] = [];
    let encoder = device.createCommandEncoder({ label: `generate position ${pos}` });
    for (const [i, s] of this.segments.entries()) {
      if (weights.streamed && i < this.model.config.numLayers) {
        if (i > 0) {
          device.queue.submit([encoder.finish()]);
          inFlight.push(device.queue.onSubmittedWorkDone());
          if (inFlight.length > 2) await inFlight.shift();
          encoder = device.createCommandEncoder({ label: `generate position ${pos}, layer ${i}` });
        }
        await weights.ensureLayer(i);
        weights.prefetch(i + 1);
      }
      const pass = encoder.beginComputePass();
      GpuModel.encode(pass, s.calls);
      pass.end();
      for (const cp of s.copies) encoder.copyBufferToBuffer(cp.src.buffer, 0, cp.dst.buffer, pos * cp.bytes, cp.bytes);
    }
    device.queue.submit([encoder.finish()]);
    this.cached.length = pos;
    this.cached.push(id);
  }

  destroy(): void {
    for (const t of this.owned) t.buffer.destroy();
    for (const s of this.segments) for (const c of s.calls) c.destroy();
  }
}
