// `gradprune prune` / `finetune`: a person's files are sacred. An --out that is the model folder or inside it, or
// that would overwrite an input file, is refused with one clear line before any GPU work, and nothing is written.
import { copyFile, mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelFingerprint } from '../../gradprune/fingerprint';
import { normalizeConfig } from '../../model/config';
import { openFolder } from '../../model/node-files';
import { TensorStore } from '../../model/safetensors';
import { DATASETS, fixtureDir } from '../../testing/paths';
import type { CliIO } from '../command';
import { main } from '../main';

async function cli(...argv: string[]) {
  let stderr = '';
  const io: CliIO = { out: () => undefined, err: (t) => void (stderr += `${t}\n`) };
  const code = await main(argv, io);
  return { code, stderr, lines: stderr.split('\n').filter((l) => l.startsWith('gradprune:')) };
}

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'gradprune-out-'));

/** A private copy of tiny-llama's top-level files (so a failing refusal could never write into the shared fixtures). */
async function modelCopy(): Promise<string> {
  const dir = path.join(await tmp(), 'tiny-llama');
  await mkdir(dir);
  const src = fixtureDir('tiny-llama');
  for (const name of await readdir(src)) if ((await stat(path.join(src, name))).isFile()) await copyFile(path.join(src, name), path.join(dir, name));
  return dir;
}

/** scores.json for the model at `modelDir`, named `name`, in `dir`. */
async function scoresFor(modelDir: string, dir: string, name = 'scores.json'): Promise<string> {
  const files = await openFolder(modelDir);
  const config = normalizeConfig(JSON.parse(await files.get('config.json')!.text()));
  const fingerprint = await modelFingerprint({ config, store: await TensorStore.open(files) });
  const L = config.numLayers;
  const file = path.join(dir, name);
  await writeFile(
    file,
    JSON.stringify({
      format: 'gradprune-scores',
      version: 1,
      model: { name: 'm', architecture: 'LlamaForCausalLM', numLayers: L, fingerprint },
      layerScores: Array.from({ length: L }, (_, l) => L - l),
      layerScoresCode: Array.from({ length: L }, (_, l) => L - l),
      moduleScores: Array.from({ length: L }, () => [1, 1, 1, 1, 1, 1, 1]),
      losses: [1],
    }),
  );
  return file;
}

const listing = async (dir: string) => (await readdir(dir)).sort();

describe('gradprune prune: --out must not touch the inputs', () => {
  it('refuses the model folder itself', async () => {
    const model = await modelCopy();
    const scores = await scoresFor(model, path.dirname(model));
    const before = await listing(model);
    const r = await cli('prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', model);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${model} is the model folder itself: the export would overwrite the model it reads. Give --out a new folder outside the model folder, e.g. beside it.`]);
    expect(await listing(model)).toEqual(before);
  });

  it('refuses a folder inside the model folder (also through another spelling of the path)', async () => {
    const model = await modelCopy();
    const scores = await scoresFor(model, path.dirname(model));
    const before = await listing(model);
    const out = path.join(model, '..', path.basename(model), 'pruned');
    const r = await cli('prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${out} is inside the model folder ${model}: the export would write among the model's own files. Give --out a new folder outside the model folder, e.g. beside it.`]);
    expect(await listing(model)).toEqual(before);
  });

  it('refuses an --out that is the scores file', async () => {
    const model = await modelCopy();
    const scores = await scoresFor(model, path.dirname(model));
    const r = await cli('prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', scores);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${scores} is the input file ${scores}: the export would overwrite it. Give --out a new folder for the exported files.`]);
  });

  it('refuses a folder where the export would overwrite the scores file it reads', async () => {
    const model = await modelCopy();
    const out = await tmp();
    const scores = await scoresFor(model, out, 'README.md');
    const r = await cli('prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${out} holds README.md, which this command reads and the export would overwrite. Give --out another folder, or move ${scores} elsewhere first.`]);
    expect(await listing(out)).toEqual(['README.md']);
  });
});

describe('gradprune finetune: --out must not touch the inputs', () => {
  const data = path.join(DATASETS, 'arc', 'arc_easy.jsonl');

  it('refuses the model folder itself', async () => {
    const model = await modelCopy();
    const before = await listing(model);
    const r = await cli('finetune', model, '--data', data, '--merge-adapter', '--out', model);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${model} is the model folder itself: the export would overwrite the model it reads. Give --out a new folder outside the model folder, e.g. beside it.`]);
    expect(await listing(model)).toEqual(before);
  });

  it('refuses a folder inside the model folder', async () => {
    const model = await modelCopy();
    const before = await listing(model);
    const out = path.join(model, 'adapter');
    const r = await cli('finetune', model, '--data', data, '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines[0]).toMatch(/^gradprune: --out .* is inside the model folder/);
    expect(await listing(model)).toEqual(before);
  });

  it('refuses the --dense model folder', async () => {
    const model = await modelCopy();
    const dense = await modelCopy();
    const r = await cli('finetune', model, '--data', data, '--dense', dense, '--out', dense);
    expect(r.code).toBe(2);
    expect(r.lines[0]).toMatch(/is the model folder itself/);
  });

  it('refuses a folder where the export would overwrite the data file', async () => {
    const model = await modelCopy();
    const out = await tmp();
    const dataHere = path.join(out, 'config.json');
    await copyFile(data, dataHere);
    const r = await cli('finetune', model, '--data', dataHere, '--format', 'multiple-choice', '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${out} holds config.json, which this command reads and the export would overwrite. Give --out another folder, or move ${dataHere} elsewhere first.`]);
  });
});
