// A model's weights on one device, apart from every program that runs on them (llm.c keeps parameters and
// activations apart): uploaded once and shared by every job — scoring, checking, recovery, generation — each of
// which allocates only its own (B, T) activations (./model.ts).
//
// Two residencies:
// - resident: every tensor lives on the GPU for as long as the weights do;
// - streamed: the decoder layers' weights stay in host memory (converted once to the storage dtype, up to
//   hostCacheBytes) or are re-read from the checkpoint files when uploaded (the layers past that budget: an 8B model
//   in a browser tab), and are uploaded layer by layer into two GPU slots — layer l runs on slot l % 2, so layer
//   l+1's upload (and its file read) proceeds while layer l computes (double buffering). Embedding, lm_head and the
//   final norm stay resident.
// A job reads `layer(l)` to bind a layer's tensors (the slot, when streamed) and calls `ensureLayer(l)` before it
// submits work for layer l. The same kernels run on the same values either way: results are identical.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { bindingLimit, bytesOf, createTensor, elementBytes, planRowParts, upload, uploadRows, type GpuDType, type RowPart, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { WeightStorage } from './precision';

export type Residency = 'resident' | 'streamed';

export interface LinearParams {
  W: Tensor; // (out, in)
  b: Tensor | null; // (out)
}

export interface LayerParams {
  inputNorm: Tensor; // (C)
  postNorm: Tensor; // (C)
  /** Qwen3's per-head RMSNorm on q and k, null elsewhere. */
  qNorm: Tensor | null; // (HD)
  kNorm: Tensor | null; // (HD)
  linear: Record<LinearModule, LinearParams>;
}

export interface WeightsOptions {
  storage: WeightStorage;
  residency: Residency;
  /** Streamed: host memory for layer weights (default DEFAULT_HOST_CACHE_BYTES); layers past it are re-read from the files. */
  hostCacheBytes?: number;
  /** Called after each tensor read from the store with (done, total) bytes of the checkpoint. */
  onProgress?: (done: number, total: number) => void;
}

/** Host memory streamed layers may keep by default; the rest are re-read from the checkpoint at each upload. */
export const DEFAULT_HOST_CACHE_BYTES = 4 * 2 ** 30;

type HostData = Float32Array | Uint16Array;

/** Where a layer tensor lives in LayerParams. */
type Field = { norm: 'inputNorm' | 'postNorm' | 'qNorm' | 'kNorm' } | { module: LinearModule; part: 'W' | 'b' };

/** One tensor of a decoder layer: its checkpoint name, shape, field, and whether it is a matrix (f16-capable). */
interface LayerTensor {
  name: string;
  shape: number[];
  matrix: boolean;
  field: Field;
}

const getField = (p: LayerParams, f: Field): Tensor | null => ('norm' in f ? p[f.norm] : p.linear[f.module][f.part]);
function setField(p: LayerParams, f: Field, t: Tensor): void {
  if ('norm' in f) p[f.norm] = t;
  else p.linear[f.module][f.part] = t;
}

function layerTensors(c: ModelConfig, l: number): LayerTensor[] {
  const C = c.hiddenSize;
  const list: LayerTensor[] = [
    { name: `model.layers.${l}.input_layernorm.weight`, shape: [C], matrix: false, field: { norm: 'inputNorm' } },
    { name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [C], matrix: false, field: { norm: 'postNorm' } },
  ];
  if (c.qkNorm) {
    list.push(
      { name: `model.layers.${l}.self_attn.q_norm.weight`, shape: [c.headDim], matrix: false, field: { norm: 'qNorm' } },
      { name: `model.layers.${l}.self_attn.k_norm.weight`, shape: [c.headDim], matrix: false, field: { norm: 'kNorm' } },
    );
  }
  for (const m of LINEAR_MODULES) {
    const shape = linearShape(c, m);
    const name = linearWeightName(l, m);
    list.push({ name, shape, matrix: true, field: { module: m, part: 'W' } });
    if (c.bias[m]) list.push({ name: name.replace(/weight$/, 'bias'), shape: [shape[0]], matrix: false, field: { module: m, part: 'b' } });
  }
  return list;
}

const emptyLayer = (): LayerParams => ({
  inputNorm: null!, postNorm: null!, qNorm: null, kNorm: null,
  linear: Object.fromEntries(LINEAR_MODULES.map((m) => [m, { W: null, b: null }])) as unknown as Record<LinearModule, LinearParams>,
});

/** Every checkpoint tensor the engine reads, in upload order. */
export function engineTensorNames(c: ModelConfig): string[] {
  const names = ['model.embed_tokens.weight'];
  for (let l = 0; l < c.numLayers; l++) names.push(...layerTensors(c, l).map((t) => t.name));
  names.push('model.norm.weight');
  if (!c.tiedEmbeddings) names.push('lm_head.weight');
  return names;
}

/** Rows of a large matrix read and uploaded at a time: bounds the host memory of a load to this many bytes. */
const UPLOAD_SLICE_BYTES = 64 * 2 ** 20;

export class ModelWeights {
  /** The embedding (V, C) as row parts, each within one storage binding (one part when it fits). */
  embedParts: RowPart[] = [];
  /** The lm_head (V, C) as row parts: the embedding's own parts when tied. */
  lmHeadParts: RowPart[] = [];
  finalNorm!: Tensor; // (C)
  /** Bytes of every GPU buffer the weights hold. */
  allocatedBytes = 0;
  /** Bytes written to the GPU for streamed layers so far (a job's per-step upload is the difference). */
  uploadedBytes = 0;
  /** Host memory held for streamed layers (0 when resident, or when every layer is re-read from the files). */
  hostBytes = 0;
  /** Bytes re-read from the checkpoint files for streamed layers so far. */
  rereadBytes = 0;

  /** resident: one LayerParams per layer; streamed: the two slots. */
  private readonly gpuLayers: LayerParams[] = [];
  /** Streamed: per layer, its tensors in layerTensors order, or null for a layer re-read from the files. */
  private readonly host: Array<HostData[] | null> = [];
  private readonly fetching = new Map<number, Promise<HostData[]>>();
  private store: TensorStore | null = null;
  private readonly slotHolds = [-1, -1];
  private readonly owned: Tensor[] = [];

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly storage: WeightStorage,
    readonly residency: Residency,
  ) {}

  static async load(gpu: Gpu, config: ModelConfig, store: TensorStore, opts: WeightsOptions): Promise<ModelWeights> {
    const w = new ModelWeights(gpu, config, opts.storage, opts.residency);
    try {
      await w.read(store, opts);
      await gpu.device.queue.onSubmittedWorkDone();
      gpu.throwIfFailed();
    } catch (e) {
      w.destroy();
      throw e;
    }
    return w;
  }

  get streamed(): boolean {
    return this.residency === 'streamed';
  }

  /** The tensors layer l runs on (when streamed, its slot: call ensureLayer(l) before submitting its work). */
  layer(l: number): LayerParams {
    return this.gpuLayers[this.streamed ? l % 2 : l];
  }

  /**
   * Streamed: queue the upload of layer l into its slot unless the slot holds it already (reading it from the files
   * first when it is not in host memory). Resident: nothing.
   */
  async ensureLayer(l: number): Promise<void> {
    if (!this.streamed) return;
    const slot = l % 2;
    if (this.slotHolds[slot] === l) return;
    const params = this.gpuLayers[slot];
    const data = this.host[l] ?? (await (this.fetching.get(l) ?? this.readLayer(l)));
    this.fetching.delete(l);
    layerTensors(this.config, l).forEach((lt, i) => {
      const t = getField(params, lt.field)!;
      upload(this.gpu.device, t, data[i]);
      this.uploadedBytes += bytesOf(t);
    });
    this.slotHolds[slot] = l;
  }

  /** Streamed: start reading layer l from the files (when it is not in host memory), to overlap the GPU's work. */
  prefetch(l: number): void {
    if (!this.streamed || l < 0 || l >= this.config.numLayers || this.host[l] || this.fetching.has(l) || this.slotHolds[l % 2] === l) return;
    this.fetching.set(l, this.readLayer(l));
  }

  private async readLayer(l: number): Promise<HostData[]> {
    const store = this.store!;
    const out: HostData[] = [];
    for (const t of layerTensors(this.config, l)) {
      const d = this.dtypeOf(t) === 'f16' ? await store.readF16Bits(t.name) : await store.readF32(t.name);
      this.rereadBytes += d.byteLength;
      out.push(d);
    }
    return out;
  }

  /** GPU bytes of one decoder layer's weights in this storage. */
  layerBytes(l = 0): number {
    return layerTensors(this.config, l).reduce((s, t) => s + bytesOf({ numel: t.shape.reduce((a, b) => a * b, 1), dtype: this.dtypeOf(t) }), 0);
  }

  /** Bytes of the weights as stored on the GPU if every tensor were resident (the model's size, not its footprint). */
  modelBytes(): number {
    const seen = new Set<Tensor>([this.finalNorm, ...[...this.embedParts, ...this.lmHeadParts].map((p) => p.tensor)]);
    const fixed = [...seen].reduce((s, t) => s + bytesOf(t), 0);
    let layers = 0;
    for (let l = 0; l < this.config.numLayers; l++) layers += this.layerBytes(l);
    return fixed + layers;
  }

  destroy(): void {
    for (const t of this.owned) t.buffer.destroy();
    this.owned.length = 0;
    this.host.length = 0;
    this.fetching.clear();
  }

  private dtypeOf(t: LayerTensor): GpuDType {
    return t.matrix && this.storage === 'f16' ? 'f16' : 'f32';
  }

  private alloc(label: string, shape: readonly number[], dtype: GpuDType): Tensor {
    const t = createTensor(this.gpu.device, label, shape, dtype);
    this.allocatedBytes += t.buffer.size;
    this.owned.push(t);
    return t;
  }

  /**
   * A (V, C) matrix as row parts within the binding limit, read and uploaded in row slices of at most
   * UPLOAD_SLICE_BYTES (a 128k-vocabulary embedding never sits whole in host memory).
   */
  private async readMatrix(
    name: string,
    shape: [number, number],
    dtype: GpuDType,
    read: (name: string, shape: number[], dtype: GpuDType, rows?: [number, number]) => Promise<HostData>,
  ): Promise<RowPart[]> {
    const [rows, cols] = shape;
    const plan = planRowParts(rows, cols, elementBytes(dtype), bindingLimit(this.gpu.device));
    const parts = plan.map((p, i) => ({ tensor: this.alloc(plan.length === 1 ? name : `${name}.part${i}`, [p.rows, cols], dtype), rowStart: p.rowStart }));
    const slice = Math.max(1, Math.floor(UPLOAD_SLICE_BYTES / (cols * elementBytes(dtype))));
    for (let r = 0; r < rows; r += slice) {
      const r1 = Math.min(rows, r + slice);
      uploadRows(this.gpu.device, parts, r, await read(name, shape, dtype, [r, r1]));
    }
    return parts;
  }

  private async read(store: TensorStore, { onProgress, hostCacheBytes }: Pick<WeightsOptions, 'onProgress' | 'hostCacheBytes'>): Promise<void> {
    const c = this.config;
    const C = c.hiddenSize;
    const total = engineTensorNames(c).reduce((s, n) => s + store.info(n).end - store.info(n).begin, 0);
    let done = 0;
    const checkShape = (name: string, shape: number[]) => {
      const info = store.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new GradPruneError('tensor', `Tensor "${name}" in ${info.file} has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}].`, {
          subject: name,
          hint: 'The weights and config.json do not belong together: use the files of one checkpoint.',
        });
      }
      return info;
    };
    /** Matrices may be f16; norms and biases stay f32 (small, and read by f32-only kernels). */
    const readHost = async (name: string, shape: number[], dtype: GpuDType, rows?: [number, number]): Promise<HostData> => {
      const info = checkShape(name, shape);
      const as = dtype === 'f16' ? 'f16' : 'f32';
      const data = rows ? await store.readRows(name, rows[0], rows[1], as) : as === 'f16' ? await store.readF16Bits(name) : await store.readF32(name);
      done += rows ? ((info.end - info.begin) * (rows[1] - rows[0])) / shape[0] : info.end - info.begin;
      onProgress?.(done, total);
      return data;
    };
    const resident = async (name: string, shape: number[], dtype: GpuDType): Promise<Tensor> => {
      const t = this.alloc(name, shape, dtype);
      upload(this.gpu.device, t, await readHost(name, shape, dtype));
      return t;
    };
    const matrix: GpuDType = this.storage === 'f16' ? 'f16' : 'f32';

    this.embedParts = await this.readMatrix('model.embed_tokens.weight', [c.vocabSize, C], matrix, readHost);
    if (this.streamed) {
      for (let s = 0; s < Math.min(2, c.numLayers); s++) {
        const p = emptyLayer();
        for (const t of layerTensors(c, s)) setField(p, t.field, this.alloc(`slot${s}.${t.name.replace(/^model\.layers\.\d+\./, '')}`, t.shape, this.dtypeOf(t)));
        this.gpuLayers.push(p);
      }
      this.store = store;
      const cacheBytes = hostCacheBytes ?? DEFAULT_HOST_CACHE_BYTES;
      for (let l = 0; l < c.numLayers; l++) {
        if (this.hostBytes + this.layerBytes(l) > cacheBytes) {
          // Re-read from the files at each upload: checked now, read then.
          for (const t of layerTensors(c, l)) {
            const info = checkShape(t.name, t.shape);
            done += info.end - info.begin;
          }
          onProgress?.(done, total);
          this.host.push(null);
          continue;
        }
        const data: HostData[] = [];
        for (const t of layerTensors(c, l)) {
          const d = await readHost(t.name, t.shape, this.dtypeOf(t));
          this.hostBytes += d.byteLength;
          data.push(d);
        }
        this.host.push(data);
      }
    } else {
      for (let l = 0; l < c.numLayers; l++) {
        const p = emptyLayer();
        for (const t of layerTensors(c, l)) setField(p, t.field, await resident(t.name, t.shape, this.dtypeOf(t)));
        this.gpuLayers.push(p);
      }
    }
    this.finalNorm = await resident('model.norm.weight', [C], 'f32');
    this.lmHeadParts = c.tiedEmbeddings ? this.embedParts : await this.readMatrix('lm_head.weight', [c.vocabSize, C], matrix, readHost);
  }
}
