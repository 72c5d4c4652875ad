// The loss head at a large vocabulary: lm_head + next-token cross-entropy, forward and backward (dh = d loss / d hf),
// chunked (nn/loss-head.ts LossHead: row chunks over vocabulary parts, logits recomputed in the backward) vs
// unchunked (the old kernels: linearForward into the whole (N, V) logits, crossentropyForward, crossentropyBackward
// into the whole (N, V) dlogits, linearBackward into dh). Time by the bench timer (GPU timestamps where the adapter
// has them) and memory: the LossHead's scratch vs the (N, V) logits + dlogits, each as a ratio to the unchunked
// head, from one run; loss and dh are compared between the two.

import type { Gpu } from '../gpu/device';
import type { KernelCall } from '../gpu/kernel';
import { bindingLimit, createRowParts, createTensor, readback, upload, uploadRows, type Tensor } from '../gpu/tensor';
import { numberToF16Bits } from '../model/dtype';
import { crossentropyBackward, crossentropyForward, fill, kernelLib, linearBackward, linearForward } from '../nn/kernels';
import { LossHead } from '../nn/loss-head';
import { preferredWeightStorage } from '../nn/model';
import type { SizeName } from './cases';
import { fixed, mib, type BenchSection } from './report';
import { createTimer } from './timing';

export interface LossHeadShape {
  B: number;
  T: number;
  C: number;
  V: number;
}

/** Large vocabularies (Llama 3's 128256) with a small hidden size, so the head, not the matmul width, is measured. */
export const LOSS_HEAD_SHAPES: Record<SizeName, LossHeadShape> = {
  tiny: { B: 2, T: 32, C: 64, V: 32000 },
  small: { B: 1, T: 128, C: 64, V: 128256 },
  medium: { B: 2, T: 256, C: 256, V: 128256 },
  large: { B: 4, T: 256, C: 512, V: 128256 },
};

export interface LossHeadBenchOptions {
  reps: number;
  tooSlow: (flops: number) => boolean;
  log: (line: string) => void;
}

function randomFloats(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  const POOL = Math.min(n, 1 << 16);
  for (let i = 0; i < POOL; i++) out[i] = ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296 * 2 - 1) * scale;
  for (let i = POOL; i < n; i += POOL) out.copyWithin(i, 0, Math.min(POOL, n - i));
  return out;
}

export async function benchLossHead(gpu: Gpu, size: SizeName, opts: LossHeadBenchOptions, out: BenchSection): Promise<void> {
  const { B, T, C, V } = LOSS_HEAD_SHAPES[size];
  const N = B * T;
  const device = gpu.device;
  const k = kernelLib(gpu);
  const storage = preferredWeightStorage(gpu);
  const owned: Tensor[] = [];
  const calls: KernelCall[] = [];
  const heads: LossHead[] = [];
  const tensor = (label: string, shape: number[], dtype: 'f32' | 'i32' = 'f32') => {
    const t = createTensor(device, label, shape, dtype);
    owned.push(t);
    return t;
  };
  const shapeText = `N=${N} (B${B}×T${T}), C=${C}, V=${V}`;
  opts.log(`losshead: ${shapeText}, ${storage} lm_head`);
  try {
    // Inputs shared by every variant.
    const parts = createRowParts(device, 'lm_head', V, C, storage);
    owned.push(...parts.map((p) => p.tensor));
    const w = randomFloats(V * C, 3, 0.05);
    uploadRows(device, parts, 0, storage === 'f16' ? Uint16Array.from(w, numberToF16Bits) : w);
    const hf = tensor('hf', [N, C]);
    upload(device, hf, randomFloats(N * C, 5, 1));
    const ids = tensor('ids', [B, T], 'i32');
    let x = 7;
    upload(device, ids, Int32Array.from({ length: N }, () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % V));
    const mask = tensor('mask', [B, T], 'i32');
    upload(device, mask, new Int32Array(N).fill(1));
    const losses = tensor('losses', [B, T]);
    const lse = tensor('lse', [B, T]);
    const stats = tensor('stats', [2]);
    const dh = tensor('dh', [N, C]);

    const timer = createTimer(device);
    const fullBytes = 2 * N * V * 4; // (N, V) logits + (N, V) dlogits, f32
    const matmul = 2 * N * C * V;
    type Result = { name: string; fw: number; bw: number; method: string; bytes: number; loss: number; dh: Float32Array };
    const results: Result[] = [];
    const measure = async (name: string, fw: KernelCall[], bw: KernelCall[], bwMatmuls: number, bytes: number) => {
      if (opts.tooSlow((opts.reps + 1) * (1 + bwMatmuls) * matmul)) {
        out.notes.push(`skipped ${name}: ${opts.reps + 1} forward + backward passes are predicted to take over --max-step-seconds here`);
        return;
      }
      opts.log(`  ${name}`);
      const f = await timer.time(fw, opts.reps);
      const b = await timer.time(bw, opts.reps); // after the forward: reads its lse and stats
      gpu.throwIfFailed();
      const [loss] = await readback(device, stats);
      results.push({ name, fw: f.seconds, bw: b.seconds, method: f.method === b.method ? f.method : `${f.method}/${b.method}`, bytes, loss, dh: await readback(device, dh) });
    };

    const binding = bindingLimit(device);
    if (parts.length > 1 || N * V * 4 > binding) {
      out.notes.push(`unchunked: skipped, the (N, V) logits (${mib(N * V * 4)} MiB) or the lm_head do not fit one ${mib(binding)} MiB binding (the reason the loss head is chunked)`);
    } else {
      const logits = tensor('logits', [N, V]);
      const dlogits = tensor('dlogits', [N, V]);
      const fw = [...linearForward(k, logits, hf, parts[0].tensor, null), ...crossentropyForward(k, losses, lse, stats, logits, ids, mask, T)];
      const bw = [...crossentropyBackward(k, dlogits, logits, lse, stats, ids, mask, T), ...fill(k, dh), ...linearBackward(k, dh, null, null, dlogits, hf, parts[0].tensor)];
      calls.push(...fw, ...bw);
      await measure('unchunked (N, V) logits', fw, bw, 1, fullBytes);
      for (const t of [logits, dlogits]) {
        t.buffer.destroy();
        owned.splice(owned.indexOf(t), 1);
      }
    }

    const chunkRows = [undefined, Math.max(1, Math.floor(N / 4))];
    const seen = new Set<number>();
    for (const R of chunkRows) {
      const head = new LossHead(k, { hf, ids, mask, lmHeadParts: parts, V, T, losses, lse, stats, training: true, dh, chunkRows: R });
      heads.push(head);
      if (seen.has(head.plan.R)) continue;
      seen.add(head.plan.R);
      const name = `chunked${R === undefined ? ' (default)' : ''}: R=${head.plan.R}, ${head.plan.chunks} chunk${head.plan.chunks > 1 ? 's' : ''} × ${parts.length} part${parts.length > 1 ? 's' : ''}`;
      await measure(name, head.forwardCalls, [...fill(k, dh), ...head.backwardCalls], 2, head.bytes);
    }

    const ref = results[0];
    const refMax = ref ? ref.dh.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0;
    for (const r of results) {
      let maxDiff = 0;
      let maxRef: number;
      for (let i = 0; i < r.dh.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(r.dh[i] - ref.dh[i]));
      }
      maxRef = refMax;
      out.rows.push({
        head: r.name,
        shape: shapeText,
        'forward ms': fixed(r.fw * 1e3, 2),
        'backward ms': fixed(r.bw * 1e3, 2),
        'time / unchunked': ref.name.startsWith('unchunked') ? `${fixed((r.fw + r.bw) / (ref.fw + ref.bw), 3)}×` : null,
        'scratch MiB': mib(r.bytes),
        'memory / (N,V) logits+dlogits': fixed(r.bytes / fullBytes, 4),
        loss: fixed(r.loss, 5),
        'max |Δdh| / max |dh|': r === ref ? null : maxDiff / (maxRef || 1),
        timing: r.method,
      });
    }
    out.notes.push(
      `forward: lm_head + cross-entropy (+ the mean-loss reduction); backward: dlogits and dh = dlogits·W (chunked: recomputes each logits chunk, so ~2× the forward matmul FLOPs); ${opts.reps} reps after a warm-up; lm_head ${storage}; memory: bytes of the head's scratch (unchunked: the (N, V) logits and dlogits, ${mib(fullBytes)} MiB) — the lm_head, hf and dh are the same for both and not counted; Δdh against the first row's dh (max |dh| ${refMax.toExponential(3)})`,
    );
  } finally {
    for (const h of heads) h.destroy();
    for (const c of calls) c.destroy();
    for (const t of owned) t.buffer.destroy();
  }
}
