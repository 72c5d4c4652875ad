// The exported folder opens in transformers.js (Node: onnxruntime-node) as a person would open it —
// AutoModelForCausalLM.from_pretrained / pipeline('text-generation') on a local folder, no network — and its greedy
// tokens equal those of our engine's CPU reference (itself checked against transformers), for every fixture
// architecture, unpruned and pruned (the fixtures' own pruned weights), fp32 exactly and fp16 as stated below.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, pipeline, Tensor } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { openReference } from '../../nn/reference/fixture';
import { exportOnnxToTemp, ONNX_FIXTURES, prunedFixtureFolder, referenceGreedy } from '../../testing/onnx';
import { fixtureDir } from '../../testing/paths';

const NEW_TOKENS = 16;
const EOS = [2]; // every fixture's generation_config.json eos_token_id

beforeAll(() => {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
});

/** The first 8 tokens of the fixture's forward batch: a prompt transformers saw. */
async function promptOf(name: string): Promise<number[]> {
  const ref = await openReference(fixtureDir(name), 'forward.safetensors');
  return Array.from(await ref.readI32('input_ids')).slice(0, 8);
}

/** Greedy tokens from transformers.js, loading `dir` as a local model. */
async function transformersGreedy(dir: string, prompt: number[], dtype: 'fp32' | 'fp16'): Promise<number[]> {
  env.localModelPath = path.dirname(dir);
  const model = await AutoModelForCausalLM.from_pretrained(path.basename(dir), { local_files_only: true, dtype });
  try {
    const input_ids = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const out = (await model.generate({ input_ids, max_new_tokens: NEW_TOKENS, do_sample: false })) as Tensor;
    return Array.from(out.data as BigInt64Array, Number).slice(prompt.length);
  } finally {
    await model.dispose();
  }
}

const matchingPrefix = (a: number[], b: number[]) => {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};

describe.each(ONNX_FIXTURES)('transformers.js runs the ONNX export of %s', (name) => {
  for (const plan of [null, 'prune2_merge1'] as const) {
    it(`${plan ? `pruned (${plan})` : 'unpruned'}: greedy tokens equal our engine's (fp32 exactly, fp16 for the first 8)`, async () => {
      const model = plan ? await prunedFixtureFolder(name, plan) : fixtureDir(name);
      const dir = await exportOnnxToTemp(model);
      const prompt = await promptOf(name);
      const ours = await referenceGreedy(model, prompt, NEW_TOKENS, EOS);
      expect(ours.length).toBeGreaterThan(0);
      expect(await transformersGreedy(dir, prompt, 'fp32')).toEqual(ours);
      const half = await transformersGreedy(dir, prompt, 'fp16');
      expect(matchingPrefix(half, ours)).toBeGreaterThanOrEqual(Math.min(8, ours.length));
    });
  }
});

describe('the transformers.js folder', () => {
  it("pipeline('text-generation') on tiny-llama continues a text as our engine does", async () => {
    const dir = await exportOnnxToTemp(fixtureDir('tiny-llama'), { precisions: ['fp32'] });
    env.localModelPath = path.dirname(dir);
    const generator = await pipeline('text-generation', path.basename(dir), { local_files_only: true, dtype: 'fp32' });
    const tokenizer = await AutoTokenizer.from_pretrained(path.basename(dir), { local_files_only: true });
    const text = 'Once upon a time';
    const prompt = tokenizer.encode(text);
    const tokenize = JSON.parse(await readFile(path.join(fixtureDir('tiny-llama'), 'reference', 'tokenize.json'), 'utf8')) as { text: string; ids: number[] }[];
    expect(tokenizer.encode(tokenize[0].text)).toEqual(tokenize[0].ids); // the copied tokenizer is the fixture's
    const ours = await referenceGreedy(fixtureDir('tiny-llama'), prompt, NEW_TOKENS, EOS);
    const [result] = (await generator(text, { max_new_tokens: NEW_TOKENS, do_sample: false })) as Array<{ generated_text: string }>;
    expect(result.generated_text).toBe(tokenizer.decode([...prompt, ...ours], { skip_special_tokens: true }));
    await generator.dispose();
  });

  it('with external data (forced by a tiny inline limit), a tensor larger than a chunk, weights read in small pieces: model.onnx_data files, declared in config.json, load and generate the same tokens', async () => {
    // The embedding (512 × 96 f32 = 196,608 bytes) is larger than a chunk here, as Qwen3-8B's (2.5 GB) is at 2 GiB.
    const maxChunkBytes = 150_000;
    const dir = await exportOnnxToTemp(fixtureDir('tiny-qwen2'), { maxInlineBytes: 1024, maxChunkBytes, pieceBytes: 4096 });
    const files = (await readdir(path.join(dir, 'onnx'))).sort();
    const sizes = await Promise.all(files.filter((f) => f.startsWith('model.onnx_data')).map(async (f) => (await readFile(path.join(dir, 'onnx', f))).byteLength));
    expect(sizes).toContain(512 * 96 * 4); // a chunk of its own, not split
    expect(sizes.filter((n) => n > maxChunkBytes)).toEqual([512 * 96 * 4]);
    expect(files).toContain('model.onnx_data');
    expect(files).toContain('model.onnx_data_1');
    expect(files).toContain('model_fp16.onnx_data');
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    const chunks = config['transformers.js_config'].use_external_data_format;
    expect(files.filter((f) => f.startsWith('model.onnx_data')).length).toBe(chunks['model.onnx']);
    expect(files.filter((f) => f.startsWith('model_fp16.onnx_data')).length).toBe(chunks['model_fp16.onnx']);
    expect((await readFile(path.join(dir, 'onnx/model.onnx'))).byteLength).toBeLessThan(100_000); // weights are outside
    const prompt = await promptOf('tiny-qwen2');
    expect(await transformersGreedy(dir, prompt, 'fp32')).toEqual(await referenceGreedy(fixtureDir('tiny-qwen2'), prompt, NEW_TOKENS, EOS));
  });
});
