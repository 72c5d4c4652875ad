// `gradprune export <model-dir> --format onnx` through the CLI: the real bin once (a child process), the in-process
// entry point for the rest; what is refused is refused before anything is written.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { AutoModelForCausalLM, env, Tensor } from '@huggingface/transformers';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { maxScaledAbsError } from '../../nn/reference/compare';
import { openReference } from '../../nn/reference/fixture';
import { cli } from '../../testing/cli';
import { configOf, decoderFeeds, fixtureWithConfig, referenceGreedy, tempDir } from '../../testing/onnx';
import { fixtureDir, REPO_ROOT } from '../../testing/paths';

const run = promisify(execFile);

describe('gradprune export --format onnx', () => {
  it('bin/gradprune.mjs writes the transformers.js folder, and onnxruntime runs its fp32 graph to the fixture logits', async () => {
    const parent = await tempDir('cli');
    const out = path.join(parent, 'qwen3-onnx');
    const { stderr } = await run(process.execPath, [path.join(REPO_ROOT, 'bin/gradprune.mjs'), 'export', fixtureDir('tiny-qwen3'), '--format', 'onnx', '--out', out], { cwd: REPO_ROOT });
    expect(stderr).toMatch(/onnx {2}Qwen3ForCausalLM, 5 layers, opset 17: onnx\/model\.onnx .*, onnx\/model_fp16\.onnx /);
    expect((await readdir(out)).sort()).toEqual(['config.json', 'generation_config.json', 'onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect((await readdir(path.join(out, 'onnx'))).sort()).toEqual(['model.onnx', 'model_fp16.onnx']);
    expect(await readdir(parent)).toEqual(['qwen3-onnx']); // no temporary left beside it
    expect(await readFile(path.join(out, 'tokenizer.json'), 'utf8')).toBe(await readFile(path.join(fixtureDir('tiny-qwen3'), 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    expect(config['transformers.js_config']).toBeUndefined(); // inline weights, fp32 default: nothing to declare
    expect(config.num_hidden_layers).toBe(5);

    const session = await ort.InferenceSession.create(path.join(out, 'onnx/model.onnx'));
    const ref = await openReference(fixtureDir('tiny-qwen3'), 'forward.safetensors');
    const T = ref.info('input_ids').shape[1];
    const ids = Array.from(await ref.readI32('input_ids')).slice(0, T);
    const feeds = decoderFeeds(ort, await configOf(out), [{ ids, mask: new Array(T).fill(1), positions: [...Array(T).keys()] }], null);
    const logits = (await session.run(feeds as Record<string, ort.Tensor>)).logits.data as Float32Array;
    expect(maxScaledAbsError(logits, (await ref.readF32('logits')).subarray(0, logits.length))).toBeLessThanOrEqual(1e-4);
    await session.release();
  });

  it('--dtype fp16 writes model_fp16.onnx only, and config.json makes it what transformers.js loads by default', async () => {
    const out = path.join(await tempDir('cli'), 'llama-fp16');
    const r = await cli('export', fixtureDir('tiny-llama'), '--format', 'onnx', '--dtype', 'fp16', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(path.join(out, 'onnx'))).toEqual(['model_fp16.onnx']);
    expect(JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'))['transformers.js_config']).toEqual({ dtype: 'fp16' });
    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(out);
    const model = await AutoModelForCausalLM.from_pretrained(path.basename(out), { local_files_only: true });
    const prompt = [1, 346, 306, 414, 263, 304, 341]; // "Hello world" (reference/tokenize.json)
    const generated = (await model.generate({ input_ids: new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]), max_new_tokens: 6, do_sample: false })) as Tensor;
    expect(Array.from(generated.data as BigInt64Array, Number).slice(prompt.length)).toEqual(await referenceGreedy(fixtureDir('tiny-llama'), prompt, 6, [2]));
    await model.dispose();
  });

  it('refuses a model whose layers mix attention patterns, naming config.json, before writing anything', async () => {
    const model = await fixtureWithConfig('tiny-qwen2', (c) => {
      c.layer_types = ['full_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention'];
    });
    const parent = await tempDir('cli');
    const out = path.join(parent, 'out');
    const r = await cli('export', model, '--format', 'onnx', '--out', out);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/config\.json: "layer_types" mixes full_attention and sliding_attention layers; the ONNX export writes one attention pattern/);
    expect(await readdir(parent)).toEqual([]);
  });

  it('refuses an unknown --dtype and an existing --out without --overwrite; replaces it with --overwrite', async () => {
    const out = path.join(await tempDir('cli'), 'mistral-onnx');
    const bad = await cli('export', fixtureDir('tiny-mistral'), '--format', 'onnx', '--dtype', 'q8_0', '--out', out);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/fp32\+fp16.*fp32.*fp16/);
    expect((await cli('export', fixtureDir('tiny-mistral'), '--format', 'onnx', '--dtype', 'fp32', '--out', out)).code).toBe(0);
    const again = await cli('export', fixtureDir('tiny-mistral'), '--format', 'onnx', '--out', out);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/);
    const replaced = await cli('export', fixtureDir('tiny-mistral'), '--format', 'onnx', '--out', out, '--overwrite');
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await readdir(path.join(out, 'onnx'))).sort()).toEqual(['model.onnx', 'model_fp16.onnx']);
  });
});
