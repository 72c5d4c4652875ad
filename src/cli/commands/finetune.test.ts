// `gradprune finetune`: the command-line mistakes a person can make, each one line and an exit code, before any GPU work.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';

const data = path.join(DATASETS, 'arc', 'arc_easy.jsonl');
const gradpruneLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('gradprune:'));

describe('gradprune finetune: bad input', () => {
  it('needs --data', async () => {
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--out', os.tmpdir());
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual(['gradprune: finetune needs --data <file>: the dataset to fine-tune on.']);
    expect(stderr).toMatch(/usage: gradprune finetune <model-dir>/);
  });

  it('needs --out', async () => {
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data);
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual(['gradprune: finetune needs --out <dir>: where to write the adapter or the merged model.']);
  });

  it('refuses both --steps and --epochs', async () => {
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--steps', '5', '--epochs', '1', '--out', os.tmpdir());
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual(['gradprune: Give --steps or --epochs, not both.']);
  });

  it('rejects a bad number', async () => {
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--held-out', 'some', '--out', os.tmpdir());
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual(['gradprune: --held-out must be a number (got "some").']);
  });

  it('names an output folder it cannot write to', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-ft-'));
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'not a folder');
    const out = path.join(file, 'adapter');
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--out', out);
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual([`gradprune: Cannot write --out ${out}: ${file} is a file, not a folder (ENOTDIR). Give --out a path in a folder you can write to.`]);
  });

  it('names a data file that is not there', async () => {
    const missing = path.join(os.tmpdir(), 'no-such-dataset.jsonl');
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', missing, '--out', await mkdtemp(path.join(os.tmpdir(), 'gradprune-ft-')));
    expect(code).toBe(1);
    expect(gradpruneLines(stderr)).toHaveLength(1);
    expect(stderr).toMatch(/gradprune: Cannot read .*no-such-dataset\.jsonl \(ENOENT\)\. Give the path of the dataset file with --data\./);
  });
});

describe('gradprune finetune --mode partial: bad input', () => {
  it('--last-layers needs --mode partial', async () => {
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--last-layers', '2', '--out', os.tmpdir());
    expect(code).toBe(2);
    expect(gradpruneLines(stderr)).toEqual(['gradprune: --last-layers goes with --mode partial (LoRA trains every layer).']);
  });

  it('refuses LoRA-only options and f16 weights', async () => {
    const rank = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--mode', 'partial', '--rank', '4', '--out', os.tmpdir());
    expect(rank.code).toBe(2);
    expect(gradpruneLines(rank.stderr)).toEqual(['gradprune: --rank is for LoRA runs; --mode partial trains the weights themselves and always writes a full checkpoint.']);
    const f16 = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--mode', 'partial', '--precision', 'f16', '--out', os.tmpdir());
    expect(f16.code).toBe(2);
    expect(gradpruneLines(f16.stderr)).toEqual(['gradprune: --mode partial updates the weights in place in f32; leave --precision out (or give f32).']);
  });

  it('names a --last-layers over the model\'s layers before reading the data, and a bad --mode', async () => {
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'gradprune-ft-')), 'out');
    const { code, stderr } = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--mode', 'partial', '--last-layers', '7', '--out', out);
    expect(code).not.toBe(0);
    expect(gradpruneLines(stderr)).toHaveLength(1);
    expect(stderr).toMatch(/gradprune: --last-layers must be an integer from 1 to the model's 6 layers \(got 7\)/);
    const mode = await cli('finetune', fixtureDir('tiny-llama'), '--data', data, '--mode', 'full', '--out', out);
    expect(mode.code).toBe(2);
    expect(gradpruneLines(mode.stderr)).toEqual(['gradprune: --mode must be one of lora, partial (got "full").']);
  });
});
