// The studio's "try it" for the ONNX export, through the worker host on a real Dawn device: the pruned tiny-llama
// exported in memory, run by onnxruntime-web (wasm), continues the prompt with the same tokens as our engine, and
// the zip holds the transformers.js folder.
import { setFlagsFromString } from 'node:v8';
import { unzipSync, strFromU8 } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { countingHost, scoredAndPruned } from '../../testing/worker-journey';

setFlagsFromString('--liftoff-only'); // onnxruntime-web's wasm compiles in ~1 s instead of ~30 s of CPU

describe('worker: tryOnnx', () => {
  const h = countingHost();
  afterAll(() => {
    h.restore();
    for (const d of h.devices) d.device.destroy();
  });

  it('needs a pruned model first', async () => {
    await h.host.handle({ type: 'tryOnnx', id: 900, prompt: 'Hello', maxNewTokens: 4 });
    expect(h.events.find((e) => e.type === 'error' && e.requestId === 900)).toMatchObject({ error: { code: 'input' } });
  });

  it("runs the pruned model's ONNX export in onnxruntime-web with our engine's greedy tokens", async () => {
    const { pruned } = await scoredAndPruned(h);
    const tried = await h.request('onnxTried', { type: 'tryOnnx', prompt: 'Question: Which is a gas?', maxNewTokens: 8 });
    expect(tried.engine.length).toBeGreaterThan(0);
    expect(tried.onnx).toBe(tried.engine);
    expect(tried.same).toBe(true);
    const files = unzipSync(new Uint8Array(await tried.zip.arrayBuffer()));
    const names = Object.keys(files).sort();
    expect(names).toContain(`${tried.folderName}/onnx/model.onnx`);
    expect(names).toContain(`${tried.folderName}/tokenizer.json`);
    expect(JSON.parse(strFromU8(files[`${tried.folderName}/config.json`])).num_hidden_layers).toBe(pruned.plan.kept.length);
    expect(files[`${tried.folderName}/onnx/model.onnx`].byteLength).toBe(tried.modelBytes);
  }, 300_000);
});
