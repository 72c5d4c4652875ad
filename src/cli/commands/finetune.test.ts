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
