// Node only (npm run bench): checkpoint load throughput and memory. A random-weight BF16 checkpoint (real bytes,
// written tensor by tensor to a temp folder, deleted afterwards) is read tensor by tensor in three ways, each
// pass over the same byte ranges:
//   raw:       Blob.slice(begin, end).arrayBuffer() of each range (NodeFileBlob: positioned reads), no conversion;
//   store f32: TensorStore.readF32 / readRows(…, 'f32') as ModelWeights.load reads for f32 weights;
//   store f16: TensorStore.readF16Bits / readRows(…, 'f16') as it reads for f16 weights.
// The embedding and lm_head are read in row slices of at most 64 MiB of output (as ModelWeights.readMatrix does),
// the other tensors whole. The file was just written, so it is (most likely) in the OS page cache: this measures the
// read + conversion path, not the disk. Memory: process.memoryUsage() heapUsed + arrayBuffers sampled right after
// each read returns (its result still referenced), after a forced GC before the pass; the peak minus the value
// before the pass is the pass's growth, read as an upper bound (garbage of earlier tensors may not be collected yet).

import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { safetensorsHeader } from '../model/safetensors';
import { tensorBytes } from '../export/weights';
import { openFile } from '../model/node-files';
import { TensorStore, type TensorInfo } from '../model/safetensors';
import type { SizeName } from './cases';
import { LLAMA_3_2_1B, randomBf16, randomConfig, tensorShapes, type ModelShape } from './random-model';
import { fixed, mib, type BenchSection } from './report';

/** The checkpoint shape per size: ~90 MB at tiny, ~370 MB at small, ~1 GB at medium, Llama-3.2-1B (2.5 GB) at large. */
export const LOAD_SHAPES: Record<SizeName, ModelShape> = {
  tiny: { name: 'h512-L4', layers: 4, hidden: 512, heads: 8, kvHeads: 4, intermediate: 1376, vocab: 32000 },
  small: { name: 'h1024-L8', layers: 8, hidden: 1024, heads: 16, kvHeads: 4, intermediate: 4096, vocab: 32000 },
  medium: { name: 'h2048-L6', layers: 6, hidden: 2048, heads: 16, kvHeads: 8, intermediate: 8192, vocab: 32000 },
  large: LLAMA_3_2_1B,
};

/** Rows of the embedding / lm_head read at a time: at most this many bytes of output (weights.ts UPLOAD_SLICE_BYTES). */
const SLICE_BYTES = 64 * 2 ** 20;

let gcFn: (() => void) | null | undefined;
/** A full garbage collection (V8's gc() exposed at run time), or nothing where that is not possible. */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
  return gcFn !== null;
}

export const jsBytes = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Write a random BF16 checkpoint of this shape to `file`, tensor by tensor (a few MiB of random bytes tiled). */
async function writeRandomCheckpoint(file: string, shape: ModelShape): Promise<{ bytes: number; tensors: number }> {
  const config = randomConfig(shape);
  const specs = tensorShapes(config).map(({ name, shape: s }) => ({ name, dtype: 'BF16' as const, shape: s }));
  const header = safetensorsHeader(specs, { format: 'pt' });
  const tile = new Uint8Array(randomBf16(5)(new Uint16Array(4 * 2 ** 20)).buffer); // 8 MiB of random BF16
  const fh = await open(file, 'w');
  try {
    await fh.write(header, 0, header.byteLength, 0);
    let pos = header.byteLength;
    let k = 0;
    for (const t of specs) {
      let left = tensorBytes(t);
      while (left > 0) {
        const off = (k++ * 4099 * 2) % (tile.byteLength / 2); // a different even offset each write
        const n = Math.min(left, tile.byteLength - off);
        await fh.write(tile, off, n, pos);
        pos += n;
        left -= n;
      }
    }
    return { bytes: pos - header.byteLength, tensors: specs.length };
  } finally {
    await fh.close();
  }
}

/** One read of the plan: a whole tensor, or rows [r0, r1) of the embedding / lm_head. */
interface Read {
  t: TensorInfo;
  rows?: [number, number];
  begin: number;
  end: number;
}

function readPlan(store: TensorStore): Read[] {
  const reads: Read[] = [];
  for (const t of store.tensors.values()) {
    const sliced = t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight';
    if (!sliced) {
      reads.push({ t, begin: t.begin, end: t.end });
      continue;
    }
    const [rows, cols] = t.shape;
    const rowBytes = (t.end - t.begin) / rows;
    const slice = Math.max(1, Math.floor(SLICE_BYTES / (cols * 4)));
    for (let r = 0; r < rows; r += slice) {
      const r1 = Math.min(rows, r + slice);
      reads.push({ t, rows: [r, r1], begin: t.begin + r * rowBytes, end: t.begin + r1 * rowBytes });
    }
  }
  return reads.sort((a, b) => a.begin - b.begin);
}

type PassKind = 'raw' | 'f32' | 'f16';

interface PassResult {
  seconds: number;
  /** Peak of heapUsed + arrayBuffers during the pass minus before it. */
  growth: number;
  /** The largest single read's result. */
  largestRead: number;
}

async function pass(kind: PassKind, blob: Blob, store: TensorStore, reads: Read[]): Promise<PassResult> {
  collectGarbage();
  const before = jsBytes();
  let peak = before;
  let largestRead = 0;
  const t0 = performance.now();
  for (const r of reads) {
    let got: ArrayBuffer | ArrayBufferView;
    if (kind === 'raw') got = await blob.slice(r.begin, r.end).arrayBuffer();
    else if (r.rows) got = await store.readRows(r.t.name, r.rows[0], r.rows[1], kind);
    else got = kind === 'f32' ? await store.readF32(r.t.name) : await store.readF16Bits(r.t.name);
    largestRead = Math.max(largestRead, got.byteLength);
    peak = Math.max(peak, jsBytes());
  }
  return { seconds: (performance.now() - t0) / 1000, growth: peak - before, largestRead };
}

export interface LoadBenchOptions {
  size: SizeName;
  /** Timed passes of each kind (the best is reported). */
  reps?: number;
  log?: (line: string) => void;
}

export async function benchLoad(out: BenchSection, opts: LoadBenchOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const shape = LOAD_SHAPES[opts.size];
  const reps = Math.max(1, opts.reps ?? 2);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-bench-load-'));
  try {
    const file = path.join(dir, 'model.safetensors');
    const t0 = performance.now();
    const written = await writeRandomCheckpoint(file, shape);
    log(`load: wrote a random ${shape.name} checkpoint (${mib(written.bytes)} MiB, ${written.tensors} tensors) in ${fixed((performance.now() - t0) / 1000, 1)} s`);
    const blob = await openFile(file);
    const store = await TensorStore.open(new Map([['model.safetensors', blob]]));
    const reads = readPlan(store);
    const largest = Math.max(...[...store.tensors.values()].map((t) => t.end - t.begin));
    await pass('raw', blob, store, reads); // warm-up: page cache, JIT
    const results: Record<PassKind, PassResult[]> = { raw: [], f32: [], f16: [] };
    // Alternating order (raw f32 f16, f16 f32 raw, …), so a drift of the machine weighs on every kind alike.
    for (let i = 0; i < reps; i++) {
      const order: PassKind[] = i % 2 === 0 ? ['raw', 'f32', 'f16'] : ['f16', 'f32', 'raw'];
      for (const kind of order) results[kind].push(await pass(kind, blob, store, reads));
      log(`  load pass ${i + 1}/${reps}: ${(['raw', 'f32', 'f16'] as const).map((k) => `${k} ${fixed(results[k][i].seconds, 2)} s`).join(', ')}`);
    }
    const best = (k: PassKind) => results[k].reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const peakGrowth = (k: PassKind) => Math.max(...results[k].map((r) => r.growth));
    const raw = best('raw');
    const label = `${shape.name} BF16, ${mib(written.bytes)} MiB`;
    const names: Record<PassKind, string> = { raw: 'raw Blob bytes', f32: 'TensorStore → f32', f16: 'TensorStore → f16 bits' };
    for (const k of ['raw', 'f32', 'f16'] as const) {
      const r = best(k);
      out.rows.push({
        checkpoint: label,
        read: names[k],
        reads: reads.length,
        s: fixed(r.seconds, 3),
        'MB/s': fixed(written.bytes / r.seconds / 1e6, 0),
        'time / raw': `${fixed(r.seconds / raw.seconds, 2)}×`,
        'largest tensor MiB': mib(largest),
        'largest read MiB': mib(r.largestRead),
        'JS growth MiB': mib(peakGrowth(k)),
        'growth / largest tensor': fixed(peakGrowth(k) / largest, 2),
      });
    }
    out.notes.push(
      `${reps} timed passes of each read after one untimed raw pass, best time reported; the checkpoint was just written to ${os.tmpdir()}, so reads likely come from the OS page cache (the read + conversion path, not the disk)`,
      `embedding and lm_head read in row slices of ≤ 64 MiB of output (as ModelWeights.load), other tensors whole; bytes in MB/s are the checkpoint's (BF16)`,
      `JS growth: peak of process.memoryUsage() heapUsed + arrayBuffers sampled after each read (result still held), minus the value after a forced GC before the pass${collectGarbage() ? '' : ' (GC could not be forced here)'}; worst pass; an upper bound (earlier reads' garbage may not be collected yet). Holding one read at a time is ~1× the read for raw bytes, ~3× for f32 (bytes read + f32 out) and ~2× for f16 bits — more than that from BF16 means an intermediate copy (model/dtype.ts toFloat16Bits converts BF16 → f32 → f16)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
