// The benchmarked kernel uses at one set of transformer shapes: tensors filled with random data, the calls built
// once, and the useful work of each (FLOPs for matmul-like kernels, minimal bytes moved for all).

import type { Gpu } from '../gpu/device';
import { run, type KernelCall } from '../gpu/kernel';
import { createTensor, upload, type GpuDType, type Tensor } from '../gpu/tensor';
import { numberToF16Bits } from '../model/dtype';
import {
  AdamWUpdate, attentionBackward, attentionForward, crossentropyBackward, crossentropyForward, GlobalGradNorm, kernelLib, linearBackward,
  linearForward, loraBackward, loraForward, residualForward, rmsnormBackward, rmsnormForward, ropeForward, ropeTables, swigluBackward, swigluForward,
} from '../nn/kernels';

export interface BenchShape {
  B: number;
  T: number;
  C: number;
  NH: number;
  NKV: number;
  HD: number;
  I: number;
  V: number;
  r: number;
}

export const SIZES = {
  /** The tiny-llama fixture's shapes with the 12-step run's batch: what the test suite spends its time on. */
  tiny: { B: 4, T: 32, C: 64, NH: 4, NKV: 2, HD: 16, I: 176, V: 512, r: 8 },
  small: { B: 1, T: 128, C: 256, NH: 4, NKV: 2, HD: 64, I: 688, V: 4000, r: 8 },
  medium: { B: 2, T: 256, C: 1024, NH: 16, NKV: 4, HD: 64, I: 2816, V: 32000, r: 16 },
  large: { B: 4, T: 512, C: 4096, NH: 32, NKV: 8, HD: 128, I: 14336, V: 32000, r: 16 },
} satisfies Record<string, BenchShape>;
export type SizeName = keyof typeof SIZES;

export interface KernelCase {
  name: string;
  shape: string;
  flops: number;
  bytes: number;
  /** The case this one's time is compared with (a ratio from the same run). */
  baseline?: string;
  /** Allocate and fill the case's tensors and build its calls (only for the cases that run: large shapes are big). */
  build(): { calls: KernelCall[]; destroy(): void };
}

export function* kernelCases(gpu: Gpu, s: BenchShape): Generator<KernelCase> {
  const k = kernelLib(gpu);
  const { B, T, C, NH, NKV, HD, I, V, r } = s;
  const N = B * T;
  let seed = 1;
  let made: Tensor[] = [];
  // Random values come from a pool drawn once and tiled with an offset per tensor: filling a 100M-element tensor
  // element by element in JavaScript takes longer than the kernel being timed.
  const POOL = 1 << 16;
  let x = 2654435761;
  const uniform = Float32Array.from({ length: POOL + 4096 }, () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  const fill = <A extends Float32Array | Int32Array | Uint16Array>(out: A, f: (u: number) => number): A => {
    const off = (seed * 977) % 4096;
    const head = out.subarray(0, Math.min(out.length, POOL)) as A;
    for (let i = 0; i < head.length; i++) head[i] = f(uniform[off + i]);
    for (let i = POOL; i < out.length; i += POOL) out.copyWithin(i, 0, Math.min(POOL, out.length - i));
    return out;
  };
  const tensor = (label: string, shape: number[], dtype: GpuDType = 'f32', lo = -1, hi = 1): Tensor => {
    const t = createTensor(gpu.device, label, shape, dtype);
    const n = t.numel;
    seed++;
    const at = (u: number) => u * (hi - lo) + lo;
    if (dtype === 'i32') upload(gpu.device, t, fill(new Int32Array(n), (u) => Math.floor(u * 0.999 * V)));
    else if (dtype === 'f16') upload(gpu.device, t, fill(new Uint16Array(n), (u) => numberToF16Bits(at(u) * 0.05)));
    else upload(gpu.device, t, fill(new Float32Array(n), (u) => at(u) * 0.05));
    made.push(t);
    return t;
  };
  const make = (name: string, shape: string, flops: number, bytes: number, build: () => KernelCall[], baseline?: string): KernelCase => ({
    name,
    shape,
    flops,
    bytes,
    baseline,
    build() {
      made = [];
      const calls = build();
      const owned = made;
      made = [];
      return {
        calls,
        destroy() {
          owned.forEach((t) => t.buffer.destroy());
          calls.forEach((c) => c.destroy());
        },
      };
    },
  });

  yield make('linearForward q_proj', `(${N},${C})·(${C},${C})ᵀ`, 2 * N * C * C, 4 * (2 * N * C + C * C), () => linearForward(k, tensor('out', [N, C]), tensor('inp', [N, C]), tensor('w', [C, C]), null));
  yield make('linearForward gate_proj', `(${N},${C})·(${I},${C})ᵀ`, 2 * N * C * I, 4 * (N * C + N * I + I * C), () => linearForward(k, tensor('out', [N, I]), tensor('inp', [N, C]), tensor('w', [I, C]), null));
  if (k.shaderF16) {
    yield make('linearForward gate_proj f16 W', `(${N},${C})·(${I},${C})ᵀ`, 2 * N * C * I, 4 * (N * C + N * I) + 2 * I * C, () => linearForward(k, tensor('out', [N, I]), tensor('inp', [N, C]), tensor('w', [I, C], 'f16'), null), 'linearForward gate_proj');
  }
  yield make('linearBackward dinp down_proj', `(${N},${C})·(${C},${I})`, 2 * N * C * I, 4 * (N * C + 2 * N * I + I * C), () => linearBackward(k, tensor('dinp', [N, I]), null, null, tensor('dout', [N, C]), tensor('inp', [N, I]), tensor('w', [C, I])), 'linearForward gate_proj');
  yield make('linearBackward dweight gate_proj', `(${N},${I})ᵀ·(${N},${C})`, 2 * N * C * I, 4 * (N * C + N * I + 2 * I * C), () => linearBackward(k, null, tensor('dw', [I, C]), null, tensor('dout', [N, I]), tensor('inp', [N, C]), tensor('w', [I, C])), 'linearForward gate_proj');
  yield make('lm_head', `(${N},${C})·(${V},${C})ᵀ`, 2 * N * C * V, 4 * (N * C + N * V + V * C), () => linearForward(k, tensor('logits', [N, V]), tensor('inp', [N, C]), tensor('wte', [V, C]), null));
  yield make(`loraForward gate_proj r${r}`, `(${N},${C})→(${N},${I})`, 2 * N * r * (C + I), 4 * (N * C + 2 * N * I + r * (C + I)), () => loraForward(k, tensor('out', [N, I]), tensor('h', [N, r]), tensor('inp', [N, C]), tensor('A', [r, C]), tensor('B', [I, r]), 2), 'linearForward gate_proj');
  yield make(
    `loraBackward gate_proj r${r}`,
    `(${N},${C})→(${N},${I})`,
    4 * N * r * (C + I),
    4 * (2 * N * C + 2 * N * I + 2 * r * (C + I)),
    () => loraBackward(k, tensor('dinp', [N, C]), tensor('dA', [r, C]), tensor('dB', [I, r]), tensor('dh', [N, r]), tensor('dout', [N, I]), tensor('inp', [N, C]), tensor('h', [N, r]), tensor('A', [r, C]), tensor('B', [I, r]), 2),
    'linearForward gate_proj',
  );

  const att = { B, T, NH, NKV, HD };
  const attFlops = 2 * B * NH * T * T * HD; // causal: half of the 4·T²·HD of q·kᵀ and p·v
  const q = () => tensor('q', [B, T, NH, HD], 'f32', -4, 4);
  const kv = (l: string) => tensor(l, [B, T, NKV, HD], 'f32', -4, 4);
  const qBytes = 4 * N * NH * HD;
  const kvBytes = 4 * N * NKV * HD;
  yield make('attentionForward', `B${B} T${T} NH${NH} NKV${NKV} HD${HD}`, attFlops, 2 * qBytes + 2 * kvBytes, () => attentionForward(k, tensor('out', [B, T, NH, HD]), tensor('lse', [B, NH, T]), q(), kv('k'), kv('v'), att));
  yield make(
    'attentionBackward',
    `B${B} T${T} NH${NH} NKV${NKV} HD${HD}`,
    2.5 * attFlops,
    4 * qBytes + 4 * kvBytes,
    () => {
      const out = tensor('out', [B, T, NH, HD]);
      const lse = tensor('lse', [B, NH, T]);
      const [tq, tk, tv] = [q(), kv('k'), kv('v')];
      const forward = attentionForward(k, out, lse, tq, tk, tv, att);
      run(gpu.device, forward); // real log-sum-exps for the backward
      forward.forEach((c) => c.destroy());
      return attentionBackward(k, tensor('dq', [B, T, NH, HD]), tensor('dk', [B, T, NKV, HD]), tensor('dv', [B, T, NKV, HD]), tensor('delta', [B, NH, T]), tensor('dout', [B, T, NH, HD]), out, tq, tk, tv, lse, att);
    },
    'attentionForward',
  );

  yield make('rmsnormForward', `(${N},${C})`, 0, 4 * (2 * N * C + C), () => rmsnormForward(k, tensor('out', [N, C]), tensor('rstd', [N]), tensor('inp', [N, C]), tensor('w', [C]), 1e-5));
  yield make('rmsnormBackward', `(${N},${C})`, 0, 4 * (4 * N * C), () => rmsnormBackward(k, tensor('dinp', [N, C]), null, tensor('dout', [N, C]), tensor('inp', [N, C]), tensor('w', [C]), tensor('rstd', [N])), 'rmsnormForward');
  yield make('ropeForward q', `(${B},${T},${NH},${HD})`, 0, 2 * qBytes, () => {
    const { cos, sin } = ropeTables({ type: 'default', theta: 10000 }, HD, T);
    const tCos = tensor('cos', [T, HD]);
    const tSin = tensor('sin', [T, HD]);
    upload(gpu.device, tCos, cos);
    upload(gpu.device, tSin, sin);
    return ropeForward(k, tensor('out', [B, T, NH, HD]), tensor('inp', [B, T, NH, HD]), tCos, tSin, T, NH);
  });
  yield make('swigluForward', `(${N},${I})`, 0, 4 * 3 * N * I, () => swigluForward(k, tensor('out', [N, I]), tensor('gate', [N, I]), tensor('up', [N, I])));
  yield make('swigluBackward', `(${N},${I})`, 0, 4 * 7 * N * I, () => swigluBackward(k, tensor('dgate', [N, I]), tensor('dup', [N, I]), tensor('dout', [N, I]), tensor('gate', [N, I]), tensor('up', [N, I])));
  yield make('residualForward', `(${N},${C})`, 0, 4 * 3 * N * C, () => residualForward(k, tensor('out', [N, C]), tensor('a', [N, C]), tensor('b', [N, C])));
  yield make('crossentropy forward+backward', `(${N},${V})`, 0, 4 * 3 * N * V, () => {
    const logits = tensor('logits', [N, V], 'f32', -5, 5);
    const [ids, mask] = [tensor('ids', [N], 'i32'), tensor('mask', [N], 'i32')];
    const [lse, stats] = [tensor('lse', [N]), tensor('stats', [2])];
    upload(gpu.device, mask, new Int32Array(N).fill(1));
    return [...crossentropyForward(k, tensor('losses', [N]), lse, stats, logits, ids, mask, T), ...crossentropyBackward(k, tensor('dlogits', [N, V]), logits, lse, stats, ids, mask, T)];
  });
  const n = 7 * r * (C + I) * 4; // all LoRA parameters of ~4 layers' worth of modules
  yield make('global grad norm + clip', `${(1.5 * n) | 0} values`, 0, 4 * 3 * 1.5 * n, () => {
    const norm = new GlobalGradNorm(k, [tensor('g0', [n]), tensor('g1', [n / 2])], 1);
    made.push(norm.norm, norm.partials);
    return norm.calls;
  });
  yield make('adamw', `${n} values`, 0, 4 * 7 * n, () => {
    const upd = new AdamWUpdate(k, tensor('p', [n]), tensor('m', [n]), tensor('v', [n]), tensor('g', [n]), { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    upd.setStep(3, 1e-3);
    return upd.calls;
  });
}
