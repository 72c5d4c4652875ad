// Text generation with a KV cache, on the weights (and adapters) of a loaded GpuModel: one token per step,
// greedy or sampled (temperature, top-k, top-p) on the host from the last position's logits.
// Per token: embedding → for each layer: norm, q/k/v (+LoRA), RoPE at the token's position, append k and v to the
// layer's cache, attention over the cache, o, residual, MLP → final norm → lm_head. The prompt is fed the same way.
// Shapes: one sequence; C hidden, NH / NKV heads, HD head_dim, F intermediate, V vocab, P = maxLength positions.

import attentionDecodeWgsl from '../../shaders/attention_decode.wgsl?raw';
import { GradPruneError } from '../errors';
import type { KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, type Tensor } from '../gpu/tensor';
import type { LinearModule } from '../model/config';
import { ropeTables } from './kernels';
import { f32, u32 } from './kernels/lib';
import { adapterName, loraScale, seededRandom } from './lora';
import { GpuModel } from './model';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Stop after any of these ids (included in the output). */
  stopTokens?: readonly number[];
}

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
  private readonly attnCalls: KernelCall[] = [];
  private readonly table: { cos: Float32Array; sin: Float32Array };
  private readonly HD: number;

  constructor(readonly model: GpuModel, readonly maxLength: number) {
    const c = model.config;
    if (!Number.isInteger(maxLength) || maxLength <= 0 || maxLength > c.maxPositionEmbeddings) {
      throw new GradPruneError('input', `Generation length ${maxLength} must be between 1 and the model's ${c.maxPositionEmbeddings} positions.`, { subject: 'maxLength' });
    }
    const k = model.kernels;
    const C = c.hiddenSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize, P = maxLength;
    this.HD = HD;
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
    const att = t('att', [1, NH, HD]), scores = t('scores', [NH, P]);
    const gate = t('gate', [1, F]), up = t('up', [1, F]), act = t('act', [1, F]);
    const r = model.lora?.rank ?? 0;
    const loraH = r > 0 ? t('lora_h', [1, r]) : null;
    const scale = model.lora ? loraScale(model.lora) : 0;
    const adapterOf = new Map(model.adapters.map((a) => [a.name, a]));
    const linear = (l: number, m: LinearModule, out: Tensor, inp: Tensor): KernelCall[] => {
      const p = model.layers[l].linear[m];
      const calls = k.linearForward(out, inp, p.W, p.b);
      const ad = adapterOf.get(adapterName(l, m));
      if (ad) calls.push(...k.loraForward(out, loraH!, inp, ad.A, ad.B, scale));
      return calls;
    };
    const decode = { label: 'attentionDecode', code: attentionDecodeWgsl, entryPoint: 'attentionDecode', bindings: ['write', 'write', 'read', 'read', 'read', 'uniform'] as const, constants: { WG: 64 } };

    let seg: Segment = { calls: [...k.embeddingForward(x, this.id, model.embed)], copies: [] };
    for (let l = 0; l < c.numLayers; l++) {
      const p = model.layers[l];
      const kCache = t(`k_cache.${l}`, [P, NKV, HD]), vCache = t(`v_cache.${l}`, [P, NKV, HD]);
      seg.calls.push(
        ...k.rmsnormForward(h, rstd, x, p.inputNorm, c.rmsNormEps),
        ...linear(l, 'q_proj', qPre, h),
        ...linear(l, 'k_proj', kPre, h),
        ...linear(l, 'v_proj', vNew, h),
        ...k.ropeForward(q, qPre, this.cos, this.sin, 1, NH),
        ...k.ropeForward(kNew, kPre, this.cos, this.sin, 1, NKV),
      );
      const rowBytes = NKV * HD * 4;
      seg.copies.push({ src: kNew, dst: kCache, bytes: rowBytes }, { src: vNew, dst: vCache, bytes: rowBytes });
      this.segments.push(seg);
      const attn = model.kernels.lib.call({ ...decode, bindings: [...decode.bindings] }, `attentionDecode(layer ${l})`, [att, scores, q, kCache, vCache], [NH], this.attnUniforms(1));
      this.attnCalls.push(attn);
      seg = { calls: [attn], copies: [] };
      seg.calls.push(
        ...linear(l, 'o_proj', proj, att),
        ...k.residualForward(x2, x, proj),
        ...k.rmsnormForward(h, rstd, x2, p.postNorm, c.rmsNormEps),
        ...linear(l, 'gate_proj', gate, h),
        ...linear(l, 'up_proj', up, h),
        ...k.swigluForward(act, gate, up),
        ...linear(l, 'down_proj', proj, act),
        ...k.residualForward(x, x2, proj),
      );
    }
    seg.calls.push(...k.rmsnormForward(h, rstd, x, model.finalNorm, c.rmsNormEps), ...k.linearForward(this.logits, h, model.lmHead, null));
    this.segments.push(seg);
  }

  private attnUniforms(len: number) {
    const c = this.model.config;
    return [u32(len), u32(c.numHeads), u32(c.numKvHeads), u32(c.headDim), u32(c.slidingWindow ?? 0), f32(1 / Math.sqrt(c.headDim)), u32(this.maxLength)];
  }

  /**
   * Run token `id` at position `pos` (0-based; positions before it must have been run, in order) and return the
   * logits (V) of the next token.
   */
  async nextLogits(id: number, pos: number): Promise<Float32Array> {
    this.submit(id, pos);
    const logits = await readback(this.model.gpu.device, this.logits);
    this.model.gpu.throwIfFailed();
    return logits;
  }

  private submit(id: number, pos: number): void {
    const { device } = this.model.gpu;
    const HD = this.HD;
    upload(device, this.id, Int32Array.of(id));
    upload(device, this.cos, this.table.cos.subarray(pos * HD, (pos + 1) * HD));
    upload(device, this.sin, this.table.sin.subarray(pos * HD, (pos + 1) * HD));
    for (const a of this.attnCalls) a.setUniforms(this.attnUniforms(pos + 1));
    const encoder = device.createCommandEncoder({ label: `generate position ${pos}` });
    for (const s of this.segments) {
      const pass = encoder.beginComputePass();
      GpuModel.encode(pass, s.calls);
      pass.end();
      for (const cp of s.copies) encoder.copyBufferToBuffer(cp.src.buffer, 0, cp.dst.buffer, pos * cp.bytes, cp.bytes);
    }
    device.queue.submit([encoder.finish()]);
  }

  /** The prompt's continuation (new tokens only). */
  async generate(prompt: readonly number[], opts: GenerateOptions): Promise<number[]> {
    const V = this.model.config.vocabSize;
    if (prompt.length === 0) throw new GradPruneError('input', 'Generation needs a prompt of at least one token.', { subject: 'prompt' });
    if (prompt.length + opts.maxNewTokens > this.maxLength) {
      throw new GradPruneError('input', `The prompt (${prompt.length} tokens) plus ${opts.maxNewTokens} new tokens exceed the ${this.maxLength} positions this generator was set up for.`, {
        subject: 'maxNewTokens',
        hint: 'Shorten the prompt or generate fewer tokens.',
      });
    }
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GradPruneError('input', `Prompt token id ${id} is outside the vocabulary (0..${V - 1}).`, { subject: 'prompt' });
    }
    const rand = seededRandom(opts.seed ?? 0);
    const stop = new Set(opts.stopTokens ?? []);
    for (let i = 0; i + 1 < prompt.length; i++) this.submit(prompt[i], i);
    let logits = await this.nextLogits(prompt[prompt.length - 1], prompt.length - 1);
    const out: number[] = [];
    for (let n = 0; n < opts.maxNewTokens; n++) {
      const next = pickToken(logits, opts, rand);
      out.push(next);
      if (stop.has(next) || n === opts.maxNewTokens - 1) break;
      logits = await this.nextLogits(next, prompt.length + n);
    }
    return out;
  }

  destroy(): void {
    for (const t of this.owned) t.buffer.destroy();
    for (const s of this.segments) for (const c of s.calls) c.destroy();
  }
}

/** Greedy (temperature 0) or sampling with temperature, then top-k, then top-p (nucleus) filtering. */
export function pickToken(logits: Float32Array, opts: Pick<GenerateOptions, 'temperature' | 'topK' | 'topP'>, rand: () => number): number {
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  if (opts.topK && opts.topK > 0) order = order.slice(0, opts.topK);
  const max = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - max) / temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (opts.topP !== undefined && opts.topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < opts.topP * sum) acc += probs[keep++];
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = acc;
  }
  let u = rand() * sum;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i];
    if (u <= 0) return order[i];
  }
  return order[order.length - 1];
}
