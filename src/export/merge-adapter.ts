// A LoRA adapter merged into the weights it adapts, and the merged model as a Hugging Face checkpoint folder:
//   W ← W + (alpha / r) · B·A        W: (out, in), B: (out, r), A: (r, in)
// computed in f32 from the stored weights (upcast exactly) and rounded once back to the checkpoint's dtype, so a
// BF16 model stays BF16. Every other tensor keeps its exact bytes; config.json, the tokenizer files, the model card
// and the pruning recipe are copied as they are, and the run is recorded in gradprune_recovery.json.
// exportReplacedCheckpointTo writes the same folder with given tensors' values instead (partial-layer fine-tuning's
// trained weights), untying a tied lm_head when it is one of them.

import { GradPruneError } from '../errors';
import { expectedTensors } from '../model/checkpoint';
import { linearShape, linearWeightName, type ModelConfig } from '../model/config';
import { fromFloat32, type WeightDType } from '../model/dtype';
import type { TensorStore } from '../model/safetensors';
import { adapterName, loraScale, validateLoraConfig, type LoraAdapter, type LoraConfig } from '../nn/lora';
import { COPIED_FILE, RECIPE_FILE, type ExportSource } from './checkpoint';
import { configText } from './config';
import { MemorySink, withSink, writeBlobFile, writeBytesFile, type CheckpointSink, type WrittenFiles } from './sink';
import { DEFAULT_MAX_SHARD_BYTES, storedTensorBytes, streamWeightFiles, type ExportStats, type ExportTensor } from './weights';

export const RECOVERY_FILE = 'gradprune_recovery.json';

type AdapterValues = Pick<LoraAdapter, 'layer' | 'module' | 'A' | 'B'>;

/** W + scale · B·A as a new f32 array (the sum over r in double precision, each element rounded once). */
export function mergeLoraDelta(W: Float32Array, A: Float32Array, B: Float32Array, shape: { out: number; inp: number; rank: number }, scale: number): Float32Array {
  const { out, inp, rank } = shape;
  const merged = new Float32Array(out * inp); // (out, in)
  const row = new Float64Array(inp); // (in): Σ_r B[o, r] · A[r, :]
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let r = 0; r < rank; r++) {
      const b = B[o * rank + r];
      if (b === 0) continue;
      const a = r * inp;
      for (let i = 0; i < inp; i++) row[i] += b * A[a + i];
    }
    const w = o * inp;
    for (let i = 0; i < inp; i++) merged[w + i] = W[w + i] + scale * row[i];
  }
  return merged;
}

/** The adapters by their linear weight's tensor name, each checked against the model (layer, module, shapes). */
export function adaptersByWeight(config: ModelConfig, lora: LoraConfig, adapters: readonly AdapterValues[]): Map<string, AdapterValues> {
  validateLoraConfig(lora);
  const byWeight = new Map<string, AdapterValues>();
  for (const a of adapters) {
    const name = adapterName(a.layer, a.module);
    if (!(a.layer >= 0 && a.layer < config.numLayers)) {
      throw new GradPruneError('tensor', `The LoRA adapter ${name} is for layer ${a.layer}, but the model has ${config.numLayers} layers (0..${config.numLayers - 1}).`, {
        subject: name,
        hint: 'The adapter was trained on a different (e.g. unpruned) model: merge it into the model it was trained on.',
      });
    }
    if (!lora.modules.includes(a.module)) {
      throw new GradPruneError('tensor', `The LoRA adapter ${name} adapts ${a.module}, which the LoRA settings do not target (${lora.modules.join(', ')}).`, { subject: name });
    }
    const [out, inp] = linearShape(config, a.module);
    if (a.A.length !== lora.rank * inp || a.B.length !== out * lora.rank) {
      throw new GradPruneError('tensor', `The LoRA adapter ${name} has ${a.A.length} values in A and ${a.B.length} in B; rank ${lora.rank} on this model needs [${lora.rank}, ${inp}] and [${out}, ${lora.rank}].`, {
        subject: name,
        hint: 'Check that the adapter was trained with this rank and on this model.',
      });
    }
    const weight = linearWeightName(a.layer, a.module);
    if (byWeight.has(weight)) throw new GradPruneError('tensor', `Two LoRA adapters are given for ${name}.`, { subject: name });
    byWeight.set(weight, a);
  }
  return byWeight;
}

/** The linear weight an adapter adapts, with the adapter merged in, f32. */
export async function mergedWeight(store: TensorStore, config: ModelConfig, lora: LoraConfig, adapter: AdapterValues): Promise<Float32Array> {
  const [out, inp] = linearShape(config, adapter.module);
  return mergeLoraDelta(await store.readF32(linearWeightName(adapter.layer, adapter.module)), adapter.A, adapter.B, { out, inp, rank: lora.rank }, loraScale(lora));
}

export interface MergedExportOptions {
  lora: LoraConfig;
  adapters: readonly AdapterValues[];
  /** Store the weights in this dtype (default: the checkpoint's own). config.json's dtype follows. */
  dtype?: WeightDType;
  /** Written as gradprune_recovery.json (e.g. the fine-tuning settings and the held-out loss before and after). */
  recovery?: Record<string, unknown>;
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Filled in while writing: the most bytes held at once vs the largest tensor. */
  stats?: ExportStats;
}

const TORCH_DTYPE: Record<WeightDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** The merged model streamed into `sink`: weights merged one tensor at a time while writing; committed at the end. */
export async function exportMergedCheckpointTo(sink: CheckpointSink, source: ExportSource, opts: MergedExportOptions): Promise<WrittenFiles> {
  const byWeight = adaptersByWeight(source.config, opts.lora, opts.adapters);
  return writeCheckpointTo(sink, source, opts, (name) => {
    const adapter = byWeight.get(name);
    return adapter ? () => mergedWeight(source.store, source.config, opts.lora, adapter) : null;
  });
}

export interface ReplacedExportOptions extends Omit<MergedExportOptions, 'lora' | 'adapters'> {
  /**
   * Checkpoint tensors replaced by these f32 values (e.g. partial-layer fine-tuning's trained weights), each stored
   * in the export's dtype. An `lm_head.weight` given for a tied checkpoint unties it: written apart, with
   * config.json's tie_word_embeddings false (the embedding keeps its own values).
   */
  replaced: ReadonlyMap<string, Float32Array>;
}

/** The checkpoint with some tensors' values replaced, streamed into `sink` like the merged model. */
export async function exportReplacedCheckpointTo(sink: CheckpointSink, source: ExportSource, opts: ReplacedExportOptions): Promise<WrittenFiles> {
  const { config } = source;
  const untie = config.tiedEmbeddings && opts.replaced.has('lm_head.weight');
  const known = new Set(expectedTensors(untie ? { ...config, tiedEmbeddings: false } : config).map((t) => t.name));
  for (const name of opts.replaced.keys()) {
    if (!known.has(name)) throw new Error(`exportReplacedCheckpointTo: ${name} is not a tensor of this checkpoint`);
  }
  return writeCheckpointTo(sink, source, opts, (name) => (opts.replaced.has(name) ? async () => opts.replaced.get(name)! : null), untie);
}

/**
 * The checkpoint's tensors in order, each either computed in f32 (`computed(name)` gives how) and rounded to the
 * dtype, or its stored bytes; config.json (rewritten when the dtype changes or the lm_head is untied), the copied
 * files and gradprune_recovery.json.
 */
async function writeCheckpointTo(
  sink: CheckpointSink,
  source: ExportSource,
  opts: Omit<MergedExportOptions, 'lora' | 'adapters'>,
  computed: (name: string) => (() => Promise<Float32Array>) | null,
  untie = false,
): Promise<WrittenFiles> {
  const { config, store } = source;
  const dtype = opts.dtype ?? source.dtype;
  const tensors: ExportTensor[] = expectedTensors(untie ? { ...config, tiedEmbeddings: false } : config).map(({ name, shape }) => {
    const values = computed(name);
    return {
      name,
      dtype,
      shape: [...shape],
      bytes: async () => (values ? fromFloat32(await values(), dtype) : storedTensorBytes(store, name, dtype)),
    };
  });
  return withSink(sink, async () => {
    const written = await streamWeightFiles(sink, tensors, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, opts.stats);
    const configBlob = source.files.get('config.json');
    if (dtype !== source.dtype || !configBlob || untie) {
      const raw: Record<string, unknown> = { ...config.raw };
      for (const key of ['torch_dtype', 'dtype']) if (key in raw) raw[key] = TORCH_DTYPE[dtype];
      if (untie) raw.tie_word_embeddings = false;
      written.set('config.json', await writeBytesFile(sink, 'config.json', new TextEncoder().encode(configText(raw))));
    } else {
      written.set('config.json', await writeBlobFile(sink, 'config.json', configBlob));
    }
    for (const [name, blob] of source.files) {
      if (COPIED_FILE.test(name) || name === RECIPE_FILE || name === 'README.md') written.set(name, await writeBlobFile(sink, name, blob));
    }
    if (opts.recovery) written.set(RECOVERY_FILE, await writeBytesFile(sink, RECOVERY_FILE, new TextEncoder().encode(JSON.stringify(opts.recovery, null, 2) + '\n')));
    return written;
  });
}

/** The merged model as checkpoint files in memory (file name → Blob). */
export async function exportMergedCheckpoint(source: ExportSource, opts: MergedExportOptions): Promise<Map<string, Blob>> {
  const sink = new MemorySink();
  await exportMergedCheckpointTo(sink, source, opts);
  return sink.files;
}
