// A TensorStore whose tensors are other stores' tensors under new names, or bytes made on demand: how a pruned (or
// recovered) model is a view over the dense checkpoint, read when a job or an export reaches a tensor.

import { GradPruneError } from '../errors';
import { dtypeBytes, isWeightDType, toFloat16Bits, toFloat32 } from './dtype';
import { TensorStore, type TensorInfo } from './safetensors';

/** Where a view's tensor comes from: a tensor of another store, or bytes made on demand. */
export type ViewSource = { store: TensorStore; from: string } | { bytes: () => Promise<Uint8Array> };

/** A TensorStore whose tensors are other stores' tensors under new names, or computed; read on demand. */
export class ViewStore extends TensorStore {
  private constructor(
    tensors: Map<string, TensorInfo>,
    private readonly sources: ReadonlyMap<string, ViewSource>,
  ) {
    super([], tensors);
  }

  /** `entries` in order: the view's name, the info to report (its name is replaced), and where the bytes come from. */
  static of(entries: readonly { name: string; info: TensorInfo; source: ViewSource }[]): ViewStore {
    const infos = new Map<string, TensorInfo>();
    const sources = new Map<string, ViewSource>();
    for (const e of entries) {
      infos.set(e.name, { ...e.info, name: e.name, shape: [...e.info.shape] });
      sources.set(e.name, e.source);
    }
    return new ViewStore(infos, sources);
  }

  /** Where `name` comes from (for views over views). */
  sourceOf(name: string): ViewSource {
    this.info(name);
    return this.sources.get(name)!;
  }

  override async readBytes(name: string): Promise<Uint8Array> {
    const s = this.sourceOf(name);
    return 'bytes' in s ? s.bytes() : s.store.readBytes(s.from);
  }

  override async readRows(name: string, r0: number, r1: number, as: 'f32' | 'f16'): Promise<Float32Array | Uint16Array> {
    const s = this.sourceOf(name);
    if (!('bytes' in s)) return s.store.readRows(s.from, r0, r1, as);
    const t = this.info(name);
    if (!isWeightDType(t.dtype)) throw new GradPruneError('tensor', `Tensor "${name}" is ${t.dtype}; weights must be F32, F16 or BF16.`, { subject: name });
    const rowBytes = (t.shape[1] ?? 1) * dtypeBytes(t.dtype);
    const bytes = (await s.bytes()).subarray(r0 * rowBytes, r1 * rowBytes);
    return as === 'f16' ? toFloat16Bits(bytes, t.dtype) : toFloat32(bytes, t.dtype);
  }
}

