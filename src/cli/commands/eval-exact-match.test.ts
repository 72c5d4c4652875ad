// `gradprune eval --exact-match` end to end on the CPU reference (--cpu): a prompt/completion file whose answers are
// tiny-llama's greedy continuations (the reference's, computed plainly in src/testing) scores them as matches and a
// changed one as none; --generations writes every answer through the safe-output path; classification labels get no
// margin; a file with nothing to answer and the options' misuse are refused with what to do.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openFolder } from '../../model/node-files';
import { loadTokenizer } from '../../model/tokenizer';
import { loadFixtureModel } from '../../nn/reference/fixture';
import { ReferenceModel } from '../../nn/reference/model';
import { cli } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';
import { referenceGreedy } from '../../testing/reference-greedy';

const model = fixtureDir('tiny-llama');
const prompts = ['Once upon a time', 'The little dog', 'One day'];
let tmp: string;
let data: string;
let continuations: string[];

beforeAll(async () => {
  const tok = await loadTokenizer(await openFolder(model));
  const ref = new ReferenceModel((await loadFixtureModel(model)).weights);
  // 4 greedy tokens; EOS ends an answer early (tiny-llama's config and tokenizer agree on EOS 2).
  continuations = prompts.map((p) => tok.decode(referenceGreedy(ref, tok.encode(p, { addSpecialTokens: true }), 4, [tok.eosTokenId!]), { skipSpecialTokens: true }));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-em-'));
  data = path.join(tmp, 'qa.jsonl');
  const completions = [continuations[0], continuations[1], `${continuations[2]} and so on`];
  await writeFile(data, prompts.map((p, i) => JSON.stringify({ prompt: p, completion: completions[i] })).join('\n') + '\n');
});

describe('gradprune eval --exact-match --cpu', () => {
  it("scores the rows whose label is the model's greedy answer as matches, with each answer in --json", async () => {
    const { code, stdout, stderr } = await cli('eval', model, '--data', data, '--exact-match', '--max-new-tokens', '4', '--cpu', '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    expect(stderr).toMatch(/Answering 3 prompts greedily \(4 new tokens at most/);
    const r = JSON.parse(stdout);
    expect(r.generation.rows.map((x: { where: string; match: boolean }) => [x.where, x.match])).toEqual([['line 1', true], ['line 2', true], ['line 3', false]]);
    expect(r.generation.rows.map((x: { generated: string }) => x.generated)).toEqual(continuations);
    expect(r.exactMatch).toBeCloseTo(2 / 3, 12);
    expect(r.normalizedExactMatch).toBeCloseTo(2 / 3, 12);
    expect(r.generation).toMatchObject({ items: 3, skipped: 0, maxNewTokens: 4, file: null });
    expect(r.loss).toBeGreaterThan(0); // the loss is still there beside it
  });

  it('prints exact match beside the loss, and --generations writes every answer as JSON Lines (never over an existing file unasked)', async () => {
    const out = path.join(tmp, 'answers.jsonl');
    const { code, stdout } = await cli('eval', model, '--data', data, '--exact-match', '--max-new-tokens', '4', '--generations', out, '--cpu');
    expect(code).toBe(0);
    expect(stdout).toMatch(/perplexity {2}\d+\.\d{3}/);
    expect(stdout).toMatch(/exact match 66\.7% \(normalised 66\.7%\) over 3 greedy answers/);
    const rows = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => [x.prompt, x.label, x.generated, x.match])).toEqual([
      [prompts[0], continuations[0], continuations[0], true],
      [prompts[1], continuations[1], continuations[1], true],
      [prompts[2], `${continuations[2]} and so on`, continuations[2], false],
    ]);
    const again = await cli('eval', model, '--data', data, '--exact-match', '--generations', out, '--cpu');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--generations .*answers\.jsonl already exists/);
    expect(again.stderr).toMatch(/--overwrite/);
    const onInput = await cli('eval', model, '--data', data, '--exact-match', '--generations', data, '--overwrite', '--cpu');
    expect(onInput.code).toBe(2);
    expect(onInput.stderr).toMatch(/is the input file/);
  });

  it('classification labels (no EOS after them) are answered with as many tokens as the label has', async () => {
    const { code, stdout } = await cli('eval', model, '--data', path.join(DATASETS, 'fin-sentiment', 'fpb_test.csv'), '--limit', '2', '--exact-match', '--cpu', '--json');
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.generation).toMatchObject({ items: 2, margin: 0, maxNewTokens: null });
    expect(r.generation.rows.map((x: { label: string }) => x.label.trim())).toEqual(['neutral', 'positive']);
    expect([0, 0.5, 1]).toContain(r.exactMatch);
  });

  it('refuses a plain-text file, naming it and what to do', async () => {
    const text = path.join(tmp, 'stories.jsonl');
    await writeFile(text, '{"text": "Once upon a time there was a dog."}\n{"text": "The end."}\n');
    const { code, stderr } = await cli('eval', model, '--data', text, '--exact-match', '--cpu');
    expect(code).toBe(1);
    expect(stderr).toMatch(/stories\.jsonl: exact match needs rows with a prompt and a label .*none of its 2 text rows has one \(line 1: the row is plain text/);
    expect(stderr).toMatch(/--template/);
  });

  it.each([
    [['--max-new-tokens', '4'], /--max-new-tokens goes with --exact-match/],
    [['--generations', 'x.jsonl'], /--generations goes with --exact-match/],
    [['--exact-match', '--max-new-tokens', '0'], /--max-new-tokens must be at least 1/],
  ])('usage error: %s', async (extra, message) => {
    const { code, stderr } = await cli('eval', model, '--data', data, '--cpu', ...(extra as string[]));
    expect(code).toBe(2);
    expect(stderr).toMatch(message as RegExp);
  });
});
