// The GGUF export checked by a real client: node-llama-cpp 3.21.1 (llama.cpp's CPU build, prebuilt, no network)
// loads the file we write, tokenizes the fixtures' texts to the ids Hugging Face's tokenizers library gives
// (reference/tokenize.json), and greedily continues a prompt with the tokens our engine chooses — for the llama,
// mistral, qwen2 and qwen3 fixtures, unpruned and pruned (the fixtures' reference pruned weights).
//
// f16: llama.cpp's CPU matmul rounds activations to f16 while our engine keeps them f32, so only a near-tie could
// flip a token; on these models every token agrees. q8_0 (1/127 of each block's range per weight) is held to
// Q8_0_AGREEMENT of the tokens, each predicted after our own greedy prefix (so one flip costs one token, not the rest).
//
// getLlama tests its prebuilt binary in a child process forked with the parent's execArgv: from a file (vitest, a
// script, bin/gradprune.mjs) that works offline; from `node -e` / `node --input-type=module -e` the child re-runs the
// -e code instead of the test, exits without answering, and getLlama fails with "Binding binary test failed to run a
// test process" / NoBinaryFoundError. Run it from a file (or clear process.execArgv first).

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIds } from '../../eval/generation';
import { loadGenerationEngine } from '../../eval/engines';
import { configText, prunedConfig } from '../config';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { cli } from '../../testing/cli';
import { fixtureDir, SCORED_FIXTURE_MODELS } from '../../testing/paths';

const NEW_TOKENS = 16;
/** q8_0: at least this many of the NEW_TOKENS greedy tokens equal ours, each predicted after our own prefix. */
const Q8_0_AGREEMENT = 14;
const PROMPT = 'Once upon a time, there was a little';

let llama: Llama;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-gguf-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
}, 120_000);

afterAll(async () => {
  await llama?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** A pruned checkpoint folder made from the fixture's reference pruned weights (prune 2, merge 1). */
async function prunedFolder(name: string): Promise<string> {
  const from = fixtureDir(name);
  const dir = path.join(tmp, `${name}-pruned`);
  const { plans } = JSON.parse(await readFile(path.join(from, 'reference', 'gradprune.json'), 'utf8')) as { plans: { tag: string; num_hidden_layers: number }[] };
  const kept = plans.find((p) => p.tag === 'prune2_merge1')!.num_hidden_layers;
  await mkdir(dir);
  const config = JSON.parse(await readFile(path.join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(dir, 'config.json'), configText(prunedConfig(config, kept)));
  await copyFile(path.join(from, 'reference', 'pruned_prune2_merge1.safetensors'), path.join(dir, 'model.safetensors'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(from, f), path.join(dir, f));
  return dir;
}

async function exportGguf(dir: string, dtype: 'f16' | 'q8_0'): Promise<string> {
  const out = path.join(tmp, `${path.basename(dir)}-${dtype}.gguf`);
  const r = await cli('export', dir, '--format', 'gguf', '--dtype', dtype, '--out', out);
  expect(r.stderr).not.toMatch(/gradprune:/);
  expect(r.code).toBe(0);
  return out;
}

/** Our engine's greedy continuation (the CPU engine: float32 on the checkpoint's weights). */
async function ourGreedy(dir: string, prompt: number[]): Promise<number[]> {
  const ckpt = await openCheckpoint(await openFolder(dir));
  const engine = await loadGenerationEngine(ckpt.config, ckpt.store, { kind: 'cpu', maxLength: prompt.length + NEW_TOKENS });
  try {
    return (await generateIds(engine.model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 })).ids;
  } finally {
    engine.destroy();
  }
}

/**
 * llama.cpp's greedy tokens after `prompt`. With `forced`, each step is fed forced[i] instead of its own choice
 * (teacher forcing): every position is then judged on the same context as ours, so one early flip is one miss.
 */
async function llamaGreedy(model: LlamaModel, prompt: number[], forced?: number[]): Promise<number[]> {
  const context = await model.createContext({ contextSize: 128, threads: 1 });
  try {
    const out: number[] = [];
    const steps = context.getSequence().evaluate(prompt as never, { temperature: 0, yieldEogToken: true });
    for (let step = await steps.next(); !step.done; step = await steps.next(forced?.[out.length - 1] as never)) {
      out.push(step.value as number);
      if (out.length === NEW_TOKENS) break;
    }
    await steps.return();
    return out;
  } finally {
    await context.dispose();
  }
}

const agreeing = (a: number[], b: number[]): number => a.filter((t, i) => t === b[i]).length;

describe.each(SCORED_FIXTURE_MODELS.flatMap((name) => [{ name, pruned: false }, { name, pruned: true }]))('GGUF of $name (pruned: $pruned) in node-llama-cpp', ({ name, pruned }) => {
  let dir: string;
  let prompt: number[];
  let ours: number[];

  beforeAll(async () => {
    dir = pruned ? await prunedFolder(name) : fixtureDir(name);
    const ckpt = await openCheckpoint(await openFolder(dir));
    prompt = ckpt.tokenizer.encode(PROMPT);
    ours = await ourGreedy(dir, prompt);
  }, 60_000);

  it('f16: loads, tokenizes as tokenizer.json does, and greedy-continues with our tokens', async () => {
    const model = await llama.loadModel({ modelPath: await exportGguf(dir, 'f16') });
    try {
      const rows = JSON.parse(await readFile(path.join(fixtureDir(name), 'reference', 'tokenize.json'), 'utf8')) as { text: string; ids: number[]; ids_no_special: number[] }[];
      for (const row of rows) {
        expect(model.tokenize(row.text), row.text).toEqual(row.ids_no_special);
        expect([...(row.ids[0] === model.tokens.bos ? [model.tokens.bos] : []), ...model.tokenize(row.text)], row.text).toEqual(row.ids);
      }
      expect(model.tokens.bos).toBe(1);
      expect(model.tokens.eos).toBe(2);
      expect(await llamaGreedy(model, prompt)).toEqual(ours);
    } finally {
      await model.dispose();
    }
  });

  it(`q8_0: loads and agrees on at least ${Q8_0_AGREEMENT} of ${NEW_TOKENS} greedy tokens`, async () => {
    const model = await llama.loadModel({ modelPath: await exportGguf(dir, 'q8_0') });
    try {
      const theirs = await llamaGreedy(model, prompt, ours);
      const agreed = agreeing(theirs, ours);
      console.log(`${name}${pruned ? ' (pruned)' : ''} q8_0: ${agreed}/${NEW_TOKENS} greedy tokens agree`);
      expect(agreed).toBeGreaterThanOrEqual(Q8_0_AGREEMENT);
    } finally {
      await model.dispose();
    }
  });
});
