// Node only (npm run bench): the streamed export's memory. A Llama-shaped BF16 checkpoint whose data is a hole in
// a sparse temp file (header written, ftruncate; no disk used, reads as zeros) is pruned and exported into a
// discarding sink; JavaScript's memory is sampled at every chunk the sink receives. The numbers are ratios to the
// largest tensor: the writer's own count of the bytes it held at once (exact), and the growth of Node's heap +
// ArrayBuffer memory over the run (sampled; GC decides when buffers go, so read it as an upper bound).

import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportCheckpointTo } from '../gradprune/pruned-folder';
import { CountingSink } from '../export/sink';
import { safetensorsHeader } from '../model/safetensors';
import { emptyExportStats, tensorBytes } from '../export/weights';
import { makePlan } from '../gradprune/plan';
import { expectedTensors } from '../model/checkpoint';
import { normalizeConfig } from '../model/config';
import { openFile } from '../model/node-files';
import { TensorStore } from '../model/safetensors';
import { fixed, mib, type BenchSection } from './report';

export interface ExportMemory {
  modelBytes: number;
  largestTensorBytes: number;
  writtenBytes: number;
  /** The writer's peak of bytes held at once / the largest tensor. */
  heldRatio: number;
  /** (peak heapUsed + arrayBuffers during the export − before) / the largest tensor. */
  heapRatio: number;
  seconds: number;
}

const jsBytes = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Export a sparse Llama-shaped checkpoint of `layers` layers (hidden 2048: ~200 MB a layer in BF16), pruning 40%. */
export async function measureExportMemory(layers = 4): Promise<ExportMemory> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-bench-export-'));
  try {
    const raw = {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: layers,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      vocab_size: 32000,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
      torch_dtype: 'bfloat16',
    };
    const config = normalizeConfig(raw);
    const tensors = expectedTensors(config).map(({ name, shape }) => ({ name, dtype: 'BF16' as const, shape: [...shape] }));
    const header = safetensorsHeader(tensors, { format: 'pt' });
    const modelBytes = tensors.reduce((s, t) => s + tensorBytes(t), 0);
    const file = path.join(dir, 'model.safetensors');
    const fh = await open(file, 'w');
    await fh.write(header, 0, header.byteLength, 0);
    await fh.truncate(header.byteLength + modelBytes);
    await fh.close();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(raw));
    const source = {
      config,
      store: await TensorStore.open(new Map([['model.safetensors', await openFile(file)]])),
      dtype: 'BF16' as const,
      files: new Map([['config.json', await openFile(path.join(dir, 'config.json'))]]),
    };
    const plan = makePlan(Array.from({ length: layers }, (_, l) => layers - l), config, { prune: Math.max(1, Math.round(0.4 * layers)), merge: 0 });
    (globalThis as { gc?: () => void }).gc?.();
    const before = jsBytes();
    let peak = before;
    const sink = new CountingSink(() => void (peak = Math.max(peak, jsBytes())));
    const stats = emptyExportStats();
    const t0 = performance.now();
    await exportCheckpointTo(sink, source, {
      plan,
      merged: new Map(),
      stats,
      run: { baseModel: 'bench', settings: {}, scores: { layerScore: plan.scores }, addedElements: {} },
    });
    const seconds = (performance.now() - t0) / 1000;
    return {
      modelBytes,
      largestTensorBytes: stats.largestTensorBytes,
      writtenBytes: sink.totalBytes,
      heldRatio: stats.peakHeldBytes / stats.largestTensorBytes,
      heapRatio: (peak - before) / stats.largestTensorBytes,
      seconds,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchExport(out: BenchSection, log: (line: string) => void = () => {}): Promise<void> {
  log('export memory…');
  const m = await measureExportMemory();
  out.rows.push({
    model: `sparse BF16, ${mib(m.modelBytes)} MiB`,
    'largest tensor MiB': mib(m.largestTensorBytes),
    'written MiB': mib(m.writtenBytes),
    'held / largest': fixed(m.heldRatio, 2),
    'JS heap+buffers growth / largest': fixed(m.heapRatio, 2),
    's': fixed(m.seconds, 2),
  });
  out.notes.push('held / largest: the writer\'s own peak of bytes in hand (exact; 1.00 = one tensor at a time). JS growth: peak of process heapUsed + arrayBuffers over the export minus before, sampled at each sink write (GC-dependent; an upper bound)');
}
