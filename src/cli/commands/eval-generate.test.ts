// `gradprune eval` and `gradprune generate` end to end on the CPU reference engine (--cpu): the loss of the
// fixtures' LoRA batch through a PEFT adapter folder, multiple-choice output, greedy ids against the fixture
// logits, and the errors a person can make on the command line.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, forwardFirstSequence, loraGradFixtureFiles } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';

describe('gradprune eval --cpu', () => {
  it.each(['tiny-qwen2', 'tiny-qwen3'])("%s: reproduces the fixture loss of lora_grad.safetensors through --lora (a PEFT folder) on its token rows", async (name) => {
    const { data, adapter, loss } = await loraGradFixtureFiles(name);
    const { code, stdout, stderr } = await cli('eval', fixtureDir(name), '--data', data, '--lora', adapter, '--cpu', '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(Math.abs(r.loss - loss) / loss).toBeLessThanOrEqual(1e-5);
    expect(Math.log(r.perplexity)).toBeCloseTo(loss, 4); // perplexity = exp(loss), compared on the loss's scale
    expect(r).toMatchObject({ examples: 3, format: 'pretokenized', engine: 'cpu', acc: null, accNorm: null, multipleChoice: null });
    // Without the adapter the loss is the base model's, not the fixture's.
    const base = JSON.parse((await cli('eval', fixtureDir(name), '--data', data, '--cpu', '--json')).stdout);
    expect(Math.abs(base.loss - loss) / loss).toBeGreaterThan(1e-3);
    expect(base.tokens).toBe(r.tokens);
  });

  it('reports acc and acc_norm for a multiple-choice file, and --limit', async () => {
    const { code, stdout, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'piqa', 'piqa.jsonl'), '--limit', '3', '--cpu', '--json');
    expect(code).toBe(0);
    expect(stderr).toMatch(/choices scored: 6 \/ 6/);
    const r = JSON.parse(stdout);
    expect(r.examples).toBe(3);
    expect(r.multipleChoice).toMatchObject({ items: 3, requests: 6, truncatedRequests: 0 });
    expect(r.acc).toBe(r.multipleChoice.acc);
    expect(r.accNorm).toBe(r.multipleChoice.accNorm);
    expect([0, 1 / 3, 2 / 3, 1]).toContain(r.acc);
    expect(r.loss).toBeGreaterThan(0);
    expect(r.tokens).toBeGreaterThan(0);
  });

  it('prints a readable summary without --json', async () => {
    const { code, stdout } = await cli('eval', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'winogrande', 'winogrande.jsonl'), '--limit', '2', '--cpu');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^tiny-llama on winogrande\.jsonl \(multiple-choice \(winogrande\); 2 of \d+ rows; CPU reference\)/);
    expect(stdout).toMatch(/perplexity {2}\d+\.\d{3}/);
    expect(stdout).toMatch(/accuracy {4}\d+\.\d% \(acc_norm \d+\.\d%\) over 2 questions/);
  });

  it('needs --data', async () => {
    const { code, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--cpu');
    expect(code).toBe(2);
    expect(stderr).toMatch(/eval needs --data <file>/);
  });

  it('names a bad --lora folder', async () => {
    const { code, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'piqa', 'piqa.jsonl'), '--lora', fixtureDir('tiny-llama'), '--cpu');
    expect(code).toBe(1);
    expect(stderr).toMatch(/The adapter folder has no adapter_config\.json/);
  });

  it('refuses an adapter trained for another model', async () => {
    const { adapter } = await loraGradFixtureFiles('tiny-qwen2');
    const { code, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'piqa', 'piqa.jsonl'), '--lora', adapter, '--cpu');
    expect(code).toBe(1);
    expect(stderr).toMatch(/adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" has shape \[8, 96\], but rank 8 on this model needs \[8, 64\]/);
  });

  it('rejects a bad --limit', async () => {
    const { code, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--data', 'x.jsonl', '--limit', 'many');
    expect(code).toBe(2);
    expect(stderr).toMatch(/--limit must be a whole number/);
  });
});

describe('gradprune generate --cpu', () => {
  it.each(['tiny-llama', 'tiny-mistral', 'tiny-qwen3'])('%s: the first greedy token is the argmax of the fixture logits at the last position', async (name) => {
    const { ids, nextGreedy } = await forwardFirstSequence(name);
    const { code, stdout, stderr } = await cli('generate', fixtureDir(name), '--prompt-ids', ids.join(','), '--max-new-tokens', '3', '--cpu', '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.promptIds).toEqual(ids);
    expect(r.ids[0]).toBe(nextGreedy);
    expect(r.ids.length).toBeLessThanOrEqual(3);
    expect(r.temperature).toBe(0);
    expect(typeof r.text).toBe('string');
  });

  it('tokenizes --prompt with BOS and decodes the new tokens', async () => {
    const { code, stdout } = await cli('generate', fixtureDir('tiny-llama'), '--prompt', 'Hello world', '--max-new-tokens', '4', '--cpu', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    // tokenize.json: "Hello world" with special tokens.
    expect(r.promptIds).toEqual([1, 346, 306, 414, 263, 304, 341]);
    expect(r.ids.length).toBe(r.stop === 'eos' ? r.ids.length : 4);
  });

  it('samples reproducibly with a seed at temperature > 0', async () => {
    const args = ['generate', fixtureDir('tiny-llama'), '--prompt', 'Once upon a time', '--max-new-tokens', '5', '--temperature', '1.5', '--cpu', '--json'];
    const a = JSON.parse((await cli(...args, '--seed', '3')).stdout);
    const b = JSON.parse((await cli(...args, '--seed', '3')).stdout);
    expect(a.ids).toEqual(b.ids);
  });

  it('--top-k 1 samples the greedy continuation at any temperature, and reports the sampling settings', async () => {
    const args = ['generate', fixtureDir('tiny-llama'), '--prompt', 'Once upon a time', '--max-new-tokens', '4', '--cpu', '--json'];
    const greedy = JSON.parse((await cli(...args)).stdout);
    const topK1 = JSON.parse((await cli(...args, '--temperature', '3', '--top-k', '1', '--top-p', '0.9', '--seed', '5')).stdout);
    expect(topK1.ids).toEqual(greedy.ids);
    expect([greedy.topK, greedy.topP, topK1.topK, topK1.topP, topK1.temperature]).toEqual([0, 1, 1, 0.9, 3]);
  });

  it.each([
    [['--max-new-tokens', '2'], /generate needs --prompt TEXT/],
    [['--prompt', 'a', '--prompt-ids', '1,2'], /Give --prompt or --prompt-ids, not both/],
    [['--prompt-ids', '1,99999'], /token id 99999 is outside the model's vocabulary \(0\.\.511\)/],
    [['--prompt-ids', 'one,two'], /--prompt-ids must be token ids separated by commas/],
    [['--prompt', 'a', '--temperature=-1'], /--temperature must be at least 0/],
    [['--prompt', 'a', '--top-k', '2.5'], /--top-k must be a whole number/],
    [['--prompt', 'a', '--top-p', '1.5'], /--top-p must be at most 1/],
    [['--prompt', 'a', '--top-p', '0'], /--top-p must be above 0/],
  ])('usage error: %s', async (extra, message) => {
    const { code, stderr } = await cli('generate', fixtureDir('tiny-llama'), '--cpu', ...(extra as string[]));
    expect(code).toBe(2);
    expect(stderr).toMatch(message as RegExp);
  });
});
