// The loss head: lm_head and next-token cross-entropy in row chunks, so the (N, V) logits are never whole.
// A chunk of R rows [r0, r0 + R) of the final hidden states meets each part of the lm_head (a (V, C) matrix held as
// row parts when it exceeds one storage binding, tensor.ts createRowParts) in turn: the logits chunk (R, Vp) =
// hf[rows] · W_partᵀ, folded into each row's running log-sum-exp (crossentropy.wgsl crossentropyChunk*). The
// backward pass recomputes each logits chunk instead of keeping it, and accumulates dh[rows] += dlogits · W_part.
// Memory: one logits chunk and (training) one dlogits chunk of (R, max Vp) f32, plus (R, 3) of per-row state —
// lossHeadBytes says how much, exactly what a LossHead allocates.
//
// Shapes: N = B·T rows; C hidden; V vocabulary; R rows per chunk; Vp rows of an lm_head part (vocabulary ids
// [v0, v0 + Vp)). Write semantics: forwardCalls: losses, lse (N) and stats (2) `=`; backwardCalls: dh (N, C) `+=`
// (zero it first), and with dLmHeadParts each part's dW (Vp, C) `+=`. Loss and gradients equal the unchunked crossentropyForward / crossentropyBackward to float rounding.

import { GradPruneError } from '../errors';
import { run, type KernelCall } from '../gpu/kernel';
import { bindingLimit, createTensor, PART_ROW_MULTIPLE, readback, rowPartsRows, VIEW_ALIGNMENT, view, type RowPart, type Tensor } from '../gpu/tensor';
import {
  crossentropyChunkBackward, crossentropyChunkFinish, crossentropyChunkForward, crossentropyReduce, linearBackward, linearForward, type KernelLib,
} from './kernels';

/** The default byte budget of one logits chunk (R, Vp) f32. */
export const DEFAULT_MAX_CHUNK_BYTES = 64 * 2 ** 20;

export interface LossHeadOptions {
  /**
   * Rows per chunk. Default: as many as keep a logits chunk under maxChunkBytes, a multiple of 64 (all N when
   * they fit). A given value must keep row offsets aligned: R·C·4 a multiple of 256 (or R ≥ N).
   */
  chunkRows?: number;
  /** Byte budget of one logits chunk (default DEFAULT_MAX_CHUNK_BYTES; never over the binding limit). */
  maxChunkBytes?: number;
}

export interface LossHeadSizing extends LossHeadOptions {
  /** Rows of the largest lm_head part (default V: one part). */
  partRows?: number;
  /** Allocate the dlogits chunk (backward). */
  training: boolean;
  /** The device's binding limit (tensor.ts bindingLimit); default: no limit beyond maxChunkBytes. */
  bindingBytes?: number;
}

export interface LossHeadPlan {
  /** Rows per chunk (the last chunk may be shorter). */
  R: number;
  chunks: number;
  /** Columns of the logits chunk: the largest part's rows. */
  partRows: number;
  /** Bytes of the scratch buffers a LossHead allocates: logits chunk, dlogits chunk (training), state (R, 3). */
  bytes: number;
}

const tensorBytes = (numel: number) => Math.max(4, Math.ceil((numel * 4) / 4) * 4);

/** The chunking of an (N, C) × (V, C)ᵀ loss head: pure, so the memory estimate can use it before any allocation. */
export function planLossHead(N: number, V: number, C: number, s: LossHeadSizing): LossHeadPlan {
  const partRows = s.partRows ?? V;
  const rowBytes = partRows * 4;
  const binding = s.bindingBytes ?? Infinity;
  const budget = Math.min(s.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES, binding);
  let R: number;
  if (s.chunkRows !== undefined) {
    if (!Number.isInteger(s.chunkRows) || s.chunkRows < 1) throw new Error(`loss head: chunkRows ${s.chunkRows} is not a positive integer`);
    R = Math.min(s.chunkRows, N);
    if (R < N && (R * C * 4) % VIEW_ALIGNMENT !== 0) {
      throw new Error(`loss head: chunkRows ${R} with C = ${C} puts chunks at byte offsets that are not multiples of ${VIEW_ALIGNMENT}; use a multiple of ${PART_ROW_MULTIPLE}`);
    }
  } else {
    const fit = Math.floor(budget / rowBytes);
    R = fit >= N ? N : Math.max(PART_ROW_MULTIPLE, Math.floor(fit / PART_ROW_MULTIPLE) * PART_ROW_MULTIPLE);
  }
  if (R * rowBytes > binding) {
    throw new GradPruneError('memory', `A logits chunk of ${R} rows × ${partRows} vocabulary entries needs ${R * rowBytes} bytes, over this GPU's binding limit of ${binding}.`, {
      subject: 'loss head',
      hint: 'Split the lm_head into more parts or use fewer rows per chunk.',
    });
  }
  const chunk = tensorBytes(R * partRows);
  const bytes = chunk * (s.training ? 2 : 1) + tensorBytes(R * 3);
  return { R, chunks: Math.ceil(N / R), partRows, bytes };
}

/** Bytes a LossHead of these sizes allocates (planLossHead(...).bytes), for the memory estimate. */
export function lossHeadBytes(N: number, V: number, C: number, s: LossHeadSizing): number {
  return planLossHead(N, V, C, s).bytes;
}

export interface LossHeadArgs extends LossHeadOptions {
  /** (N, C) final hidden states (after the final norm). */
  hf: Tensor;
  /** (B, T) i32 token ids; position t's target is ids[t + 1] in the same sequence. */
  ids: Tensor;
  /** (B, T) i32; position t counts iff mask[t + 1] == 1. */
  mask: Tensor;
  /** The lm_head (V, C) as row parts tiling [0, V) (one part when it fits a binding); f32 or f16. */
  lmHeadParts: readonly RowPart[];
  V: number;
  T: number;
  /** (N) per-position losses, 0 where not counted (`=`). */
  losses: Tensor;
  /** (N) log-sum-exp of each row's logits, kept for the backward (`=`). */
  lse: Tensor;
  /** (2) [mean loss over counted positions, count] (`=`). */
  stats: Tensor;
  /** Build the backward calls (needs dh). */
  training: boolean;
  /** (N, C) gradient of hf, accumulated (`+=`) by backwardCalls. */
  dh?: Tensor;
  /** Per lm_head part (Vp, C) f32: its dW = dlogitsᵀ·hf, accumulated (`+=`) by backwardCalls (a trained lm_head). */
  dLmHeadParts?: readonly Tensor[];
  /** d(objective)/d(mean loss), 1 for plain training. */
  dloss?: number;
}

interface Chunk {
  r0: number;
  rows: number;
  /** Per part: the logits-chunk matmul (kept: the backward and readLogits replay it) and the chunk view it writes. */
  logits: { call: KernelCall; out: Tensor; v0: number; Vp: number }[];
}

/**
 * Built once per (B, T) job: owns the chunk scratch and the KernelCalls. Encode forwardCalls for the loss;
 * after zeroing dh, backwardCalls for dh += d(mean loss · dloss)/d(hf).
 */
export class LossHead {
  readonly forwardCalls: KernelCall[] = [];
  readonly backwardCalls: KernelCall[] = [];
  readonly plan: LossHeadPlan;
  /** Bytes allocated (the scratch): equals lossHeadBytes for the same sizes. */
  readonly bytes: number;
  readonly N: number;
  readonly C: number;
  readonly V: number;
  private readonly owned: Tensor[] = [];
  private readonly chunks: Chunk[] = [];
  private readonly allCalls: KernelCall[] = [];

  constructor(kernels: KernelLib, args: LossHeadArgs) {
    const { hf, ids, mask, lmHeadParts: parts, V, T, losses, lse, stats } = args;
    const device = kernels.device;
    const V2 = rowPartsRows(parts, 'LossHead lm_head');
    if (V2 !== V) throw new Error(`LossHead: the lm_head parts hold ${V2} rows, expected V = ${V}`);
    const C = parts[0].tensor.shape[1];
    const N = ids.numel;
    if (N % T !== 0) throw new Error(`LossHead: ids ${ids.label} [${ids.shape}] is not (B, T=${T})`);
    for (const [t, n] of [[hf, N * C], [mask, N], [losses, N], [lse, N], [stats, 2]] as [Tensor, number][]) {
      if (t.numel !== n) throw new Error(`LossHead: ${t.label} [${t.shape.join(', ')}] has ${t.numel} elements, expected ${n}`);
    }
    if (args.training && (!args.dh || args.dh.numel !== N * C)) throw new Error(`LossHead: training needs dh (N=${N}, C=${C})`);
    const dParts = args.dLmHeadParts;
    if (dParts && (!args.training || dParts.length !== parts.length || dParts.some((d, i) => d.numel !== parts[i].tensor.numel))) {
      throw new Error('LossHead: dLmHeadParts needs training and one (Vp, C) gradient per lm_head part');
    }
    this.N = N;
    this.C = C;
    this.V = V;

    const partRows = Math.max(...parts.map((p) => p.tensor.shape[0]));
    this.plan = planLossHead(N, V, C, { partRows, training: args.training, chunkRows: args.chunkRows, maxChunkBytes: args.maxChunkBytes, bindingBytes: bindingLimit(device) });
    const { R } = this.plan;
    const alloc = (label: string, shape: number[]) => {
      const t = createTensor(device, label, shape);
      this.owned.push(t);
      return t;
    };
    const logitsChunk = alloc('loss_head.logits_chunk', [R, partRows]); // (R, max Vp)
    const dlogitsChunk = args.training ? alloc('loss_head.dlogits_chunk', [R, partRows]) : null; // (R, max Vp)
    const state = alloc('loss_head.state', [R, 3]); // (R, 3): running max, running Σ exp, target logit
    this.bytes = this.owned.reduce((s, t) => s + t.buffer.size, 0);

    const fw = this.forwardCalls;
    const bw = this.backwardCalls;
    const k = kernels;
    for (let r0 = 0; r0 < N; r0 += R) {
      const rows = Math.min(R, N - r0);
      const hfRows = view(hf, r0 * C, [rows, C], `${hf.label}[${r0}:${r0 + rows}]`); // (rows, C)
      const stateRows = view(state, 0, [rows, 3]); // (rows, 3)
      const chunk: Chunk = { r0, rows, logits: [] };
      parts.forEach((p, i) => {
        const Vp = p.tensor.shape[0];
        const out = view(logitsChunk, 0, [rows, Vp], `loss_head.logits[${r0}:${r0 + rows}, ${p.rowStart}:${p.rowStart + Vp}]`); // (rows, Vp)
        const [call, ...more] = linearForward(k, out, hfRows, p.tensor, null);
        if (more.length) throw new Error('LossHead: linearForward without a bias is expected to be one call');
        chunk.logits.push({ call, out, v0: p.rowStart, Vp });
        fw.push(call, ...crossentropyChunkForward(k, stateRows, out, ids, mask, { r0, v0: p.rowStart, V, T }, i === 0));
      });
      fw.push(...crossentropyChunkFinish(k, losses, lse, stateRows, ids, mask, { r0, V, T }, rows));
      this.chunks.push(chunk);

      if (args.training) {
        const dhRows = view(args.dh!, r0 * C, [rows, C], `${args.dh!.label}[${r0}:${r0 + rows}]`); // (rows, C)
        chunk.logits.forEach((l, i) => {
          const dout = view(dlogitsChunk!, 0, [rows, l.Vp]); // (rows, Vp)
          bw.push(
            l.call, // recompute the logits chunk
            ...crossentropyChunkBackward(k, dout, l.out, lse, stats, ids, mask, { r0, v0: l.v0, V, T }, args.dloss ?? 1),
            ...linearBackward(k, dhRows, dParts?.[i] ?? null, null, dout, hfRows, parts[i].tensor),
          );
        });
      }
    }
    fw.push(...crossentropyReduce(k, stats, losses, mask, T));
    this.allCalls = [...new Set([...fw, ...bw])];
  }

  /**
   * The full (N, V) logits, computed chunk by chunk and read back chunk by chunk (submits and waits per chunk):
   * for tests and small models only — the result is N·V floats in host memory.
   */
  async readLogits(device: GPUDevice): Promise<Float32Array> {
    const { N, V } = this;
    const out = new Float32Array(N * V);
    for (const c of this.chunks) {
      for (const l of c.logits) {
        run(device, [l.call], 'loss_head.readLogits');
        const got = await readback(device, l.out);
        for (let i = 0; i < c.rows; i++) out.set(got.subarray(i * l.Vp, (i + 1) * l.Vp), (c.r0 + i) * V + l.v0);
      }
    }
    return out;
  }

  /** Free the scratch and the calls' uniform buffers. */
  destroy(): void {
    for (const c of this.allCalls) c.destroy();
    for (const t of this.owned) t.buffer.destroy();
  }
}
