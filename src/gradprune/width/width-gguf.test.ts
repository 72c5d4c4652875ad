// A width-pruned folder read by a runtime that is not ours: its GGUF export, loaded by node-llama-cpp (llama.cpp's
// CPU build), greedy-continues a prompt with the tokens our CPU engine chooses on the folder — so llama.cpp reads the
// new head counts, head_dim (tiny-qwen3: 2 heads of 24 in hidden 64) and the sliced weights as we do. A Qwen2 with
// heads removed has no GGUF: llama.cpp's qwen2 architecture sizes q_proj / o_proj hidden × hidden.
// (Why from a file and not `node -e`: src/export/gguf/llama-cpp.test.ts.)
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGenerationEngine } from '../../eval/engines';
import { generateIds } from '../../eval/generation';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { cli } from '../../testing/cli';
import { fixtureDir } from '../../testing/paths';

const NEW_TOKENS = 12;
let llama: Llama;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'width-gguf-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
}, 120_000);

afterAll(async () => {
  await llama?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('width-pruned GGUF in node-llama-cpp', () => {
  it.each([
    ['tiny-llama', ['--heads', '1', '--channels', '40']],
    ['tiny-qwen2', ['--channels', '56']],
    ['tiny-qwen3', ['--heads', '1', '--channels', '32']],
  ])('%s: greedy-continues with our engine\'s tokens', async (name, target) => {
    const dir = path.join(tmp, name);
    const pruned = await cli('width-prune', fixtureDir(name), ...target, '--out', dir);
    expect(pruned.code, pruned.stderr).toBe(0);
    const gguf = path.join(tmp, `${name}.gguf`);
    const exported = await cli('export', dir, '--format', 'gguf', '--dtype', 'f16', '--out', gguf);
    expect(exported.code, exported.stderr).toBe(0);

    const ckpt = await openCheckpoint(await openFolder(dir));
    const prompt = ckpt.tokenizer.encode('Once upon a time, there was a little');
    const engine = await loadGenerationEngine(ckpt.config, ckpt.store, { kind: 'cpu', maxLength: prompt.length + NEW_TOKENS });
    const ours = (await generateIds(engine.model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 })).ids;
    engine.destroy();

    const model = await llama.loadModel({ modelPath: gguf });
    const context = await model.createContext({ contextSize: 128, threads: 1 });
    const theirs: number[] = [];
    const steps = context.getSequence().evaluate(prompt as never, { temperature: 0, yieldEogToken: true });
    for (let step = await steps.next(); !step.done && theirs.length < NEW_TOKENS; step = await steps.next()) theirs.push(step.value as number);
    await steps.return();
    await context.dispose();
    await model.dispose();
    expect(theirs).toEqual(ours.slice(0, NEW_TOKENS));
  }, 120_000);

  it('a Qwen2 with heads removed is refused before anything is written: llama.cpp\'s qwen2 sizes q_proj hidden × hidden', async () => {
    const dir = path.join(tmp, 'qwen2-heads');
    expect((await cli('width-prune', fixtureDir('tiny-qwen2'), '--heads', '1', '--out', dir)).code).toBe(0);
    const gguf = path.join(tmp, 'qwen2-heads.gguf');
    const r = await cli('export', dir, '--format', 'gguf', '--out', gguf);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/3 heads × head_dim 16 = 48, not hidden_size 96, which llama\.cpp's qwen2 architecture cannot load.*--heads 0/);
    await expect(access(gguf)).rejects.toThrow();
  });
});
