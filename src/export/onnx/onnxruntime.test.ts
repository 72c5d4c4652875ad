// The exported graphs run in real clients: onnxruntime-node (CPU EP) and onnxruntime-web (wasm EP, the browser's
// runtime, here in Node), compared with transformers' logits in the fixtures (reference/forward.safetensors).
import { setFlagsFromString } from 'node:v8';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxScaledAbsError } from '../../nn/reference/compare';
import { loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { configOf, decoderFeeds, exportOnnxToTemp, fixtureWithConfig, ONNX_FIXTURES, referenceGreedy } from '../../testing/onnx';
import { onnxGreedy } from './greedy';
import { ReferenceModel } from '../../nn/reference/model';
import { fixtureDir } from '../../testing/paths';
import { f16BitsToNumber } from '../../model/dtype';

type Session = ort.InferenceSession;

async function reference(name: string) {
  const ref = await openReference(fixtureDir(name), 'forward.safetensors');
  const [B, T] = ref.info('input_ids').shape;
  const ids = Array.from(await ref.readI32('input_ids'));
  return { B, T, V: ref.info('logits').shape[2], rows: Array.from({ length: B }, (_, b) => ids.slice(b * T, (b + 1) * T)), logits: await ref.readF32('logits') };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const ones = (n: number) => new Array<number>(n).fill(1);
const asF32 = (t: ort.Tensor): Float32Array => (t.type === 'float16' ? Float32Array.from(t.data as Uint16Array, f16BitsToNumber) : (t.data as Float32Array));

describe.each(ONNX_FIXTURES)('ONNX export of %s in onnxruntime-node', (name) => {
  let dir: string;
  let fp32: Session;
  let fp16: Session;
  beforeAll(async () => {
    dir = await exportOnnxToTemp(fixtureDir(name));
    fp32 = await ort.InferenceSession.create(path.join(dir, 'onnx/model.onnx'));
    fp16 = await ort.InferenceSession.create(path.join(dir, 'onnx/model_fp16.onnx'));
  });
  afterAll(async () => {
    await fp32?.release();
    await fp16?.release();
  });

  it('has the inputs and outputs optimum exports', async () => {
    const c = await configOf(fixtureDir(name));
    const layers = range(0, c.numLayers);
    expect(fp32.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids', ...layers.flatMap((l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`])]);
    expect(fp32.outputNames).toEqual(['logits', ...layers.flatMap((l) => [`present.${l}.key`, `present.${l}.value`])]);
  });

  it('fp32 logits equal transformers (max |Δ| ≤ 1e-4·(1+|ref|)), batch of 2', async () => {
    const c = await configOf(fixtureDir(name));
    const { T, rows, logits } = await reference(name);
    const out = await fp32.run(decoderFeeds(ort, c, rows.map((ids) => ({ ids, mask: ones(T), positions: range(0, T) })), null) as Record<string, ort.Tensor>);
    expect(out.logits.dims).toEqual([rows.length, T, c.vocabSize]);
    expect(maxScaledAbsError(out.logits.data as Float32Array, logits)).toBeLessThanOrEqual(1e-4);
    expect(out['present.0.key'].dims).toEqual([rows.length, c.numKvHeads, T, c.headDim]);
  });

  it('fp32 with the KV cache: a prefix, then one token at a time, gives the same logits', async () => {
    const c = await configOf(fixtureDir(name));
    const { T, V, rows, logits } = await reference(name);
    const ids = rows[0];
    const split = 9;
    let out = await fp32.run(decoderFeeds(ort, c, [{ ids: ids.slice(0, split), mask: ones(split), positions: range(0, split) }], null) as Record<string, ort.Tensor>);
    const got = Array.from(out.logits.data as Float32Array);
    for (let t = split; t < T; t++) {
      out = await fp32.run(decoderFeeds(ort, c, [{ ids: [ids[t]], mask: ones(t + 1), positions: [t] }], out) as Record<string, ort.Tensor>);
      got.push(...(out.logits.data as Float32Array));
    }
    expect(maxScaledAbsError(got, logits.subarray(0, T * V))).toBeLessThanOrEqual(1e-4);
  });

  it('fp32 with left padding: the padded row gives the unpadded logits', async () => {
    const c = await configOf(fixtureDir(name));
    const { T, V, rows, logits } = await reference(name);
    const short = 16;
    const pad = T - short;
    const padded = { ids: [...new Array(pad).fill(0), ...rows[1].slice(0, short)], mask: [...new Array(pad).fill(0), ...ones(short)], positions: [...new Array(pad).fill(1), ...range(0, short)] };
    const out = await fp32.run(decoderFeeds(ort, c, [{ ids: rows[0], mask: ones(T), positions: range(0, T) }, padded], null) as Record<string, ort.Tensor>);
    const second = (out.logits.data as Float32Array).subarray((T + pad) * V, 2 * T * V);
    expect(maxScaledAbsError(second, logits.subarray(T * V, (T + short) * V))).toBeLessThanOrEqual(1e-4);
  });

  it('fp16 logits agree with transformers within 5e-3·(1+|ref|) and pick the same next token nearly everywhere', async () => {
    const c = await configOf(fixtureDir(name));
    const { T, V, rows, logits } = await reference(name);
    const out = await fp16.run(decoderFeeds(ort, c, rows.map((ids) => ({ ids, mask: ones(T), positions: range(0, T) })), null, 'float16') as Record<string, ort.Tensor>);
    expect(out.logits.type).toBe('float16');
    const got = asF32(out.logits);
    expect(maxScaledAbsError(got, logits)).toBeLessThanOrEqual(5e-3);
    let same = 0;
    const argmax = (a: ArrayLike<number>, off: number) => {
      let best = 0;
      for (let v = 1; v < V; v++) if (a[off + v] > a[off + best]) best = v;
      return best;
    };
    for (let n = 0; n < rows.length * T; n++) same += Number(argmax(got, n * V) === argmax(logits, n * V));
    expect(same / (rows.length * T)).toBeGreaterThanOrEqual(0.95);
  });
});

describe('ONNX export in onnxruntime-web (wasm)', () => {
  it('tiny-qwen3 fp32 logits equal transformers, and its greedy loop gives our engine\'s tokens', async () => {
    setFlagsFromString('--liftoff-only'); // ORT's wasm compiles in ~1 s instead of ~30 s of CPU
    const web = await import('onnxruntime-web');
    web.env.wasm.numThreads = 1;
    const dir = await exportOnnxToTemp(fixtureDir('tiny-qwen3'), { precisions: ['fp32'] });
    const { readFile } = await import('node:fs/promises');
    const session = await web.InferenceSession.create(new Uint8Array(await readFile(path.join(dir, 'onnx/model.onnx'))), { executionProviders: ['wasm'] });
    const c = await configOf(fixtureDir('tiny-qwen3'));
    const { T, rows, logits } = await reference('tiny-qwen3');
    const out = await session.run(decoderFeeds(web, c, rows.map((ids) => ({ ids, mask: ones(T), positions: range(0, T) })), null) as Record<string, import('onnxruntime-web').Tensor>);
    expect(maxScaledAbsError(out.logits.data as Float32Array, logits)).toBeLessThanOrEqual(1e-4);
    // The studio's "try it" loop (onnxGreedy, KV cache) in the same runtime: our engine's greedy tokens.
    const prompt = rows[0].slice(0, 8);
    expect(await onnxGreedy(web, session, c, prompt, 12, [2])).toEqual(await referenceGreedy(fixtureDir('tiny-qwen3'), prompt, 12, [2]));
    await session.release();
  });
});

describe('ONNX export with a sliding window (Mistral)', () => {
  it('masks keys beyond the window as our engine does, with and without the KV cache', async () => {
    const model = await fixtureWithConfig('tiny-mistral', (c) => {
      c.sliding_window = 6;
    });
    const { weights, config: c } = await loadFixtureModel(model);
    expect(c.slidingWindow).toBe(6);
    const { T, V, rows } = await reference('tiny-mistral');
    const want = new ReferenceModel(weights).forward(Int32Array.from(rows[0]), 1, T).logits;
    const dir = await exportOnnxToTemp(model, { precisions: ['fp32'] });
    const session = await ort.InferenceSession.create(path.join(dir, 'onnx/model.onnx'));
    const full = await session.run(decoderFeeds(ort, c, [{ ids: rows[0], mask: ones(T), positions: range(0, T) }], null) as Record<string, ort.Tensor>);
    expect(maxScaledAbsError(full.logits.data as Float32Array, want)).toBeLessThanOrEqual(1e-4);
    let out = await session.run(decoderFeeds(ort, c, [{ ids: rows[0].slice(0, 10), mask: ones(10), positions: range(0, 10) }], null) as Record<string, ort.Tensor>);
    for (let t = 10; t < T; t++) out = await session.run(decoderFeeds(ort, c, [{ ids: [rows[0][t]], mask: ones(t + 1), positions: [t] }], out) as Record<string, ort.Tensor>);
    expect(maxScaledAbsError(out.logits.data as Float32Array, want.subarray((T - 1) * V))).toBeLessThanOrEqual(1e-4);
    const unwindowed = (await reference('tiny-mistral')).logits.subarray(0, T * V);
    expect(maxScaledAbsError(want, unwindowed)).toBeGreaterThan(1e-3); // the window changes the answer
    await session.release();
  });
});
