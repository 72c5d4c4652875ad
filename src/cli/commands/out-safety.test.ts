// Every writing command (score, prune, finetune, demo): a person's files are sacred. An --out that is the model
// folder, inside it or holding it (also through a symlink), that is or holds an input file, that exists already
// (without --overwrite), or that cannot be written is refused with one clear line before any GPU work, and nothing
// is written. (Writing itself, interrupted or replacing: src/export/node-output.test.ts.)
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelFingerprint } from '../../model/fingerprint';
import { normalizeConfig } from '../../model/config';
import { openFolder } from '../../model/node-files';
import { TensorStore } from '../../model/safetensors';
import { DATASETS, fixtureDir } from '../../testing/paths';
import type { CliIO } from '../command';
import { EMBEDDED_DEMO } from '../load';
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

describe('gradprune score: --out must not touch the inputs, nor an existing file without --overwrite', () => {
  const data = path.join(DATASETS, 'arc', 'arc_easy.jsonl');
  const score = (model: string, out: string, ...more: string[]) => cli('score', model, '--data', data, '--out', out, ...more);

  it('refuses a file inside the model folder, the weights file itself, and the dataset file (even with --overwrite)', async () => {
    const model = await modelCopy();
    const weights = path.join(model, 'model.safetensors');
    const before = await readFile(weights);
    for (const out of [weights, path.join(model, 'config.json'), path.join(model, 'scores.json')]) {
      const r = await score(model, out, '--overwrite');
      expect(r.code).toBe(2);
      expect(r.lines).toEqual([`gradprune: --out ${out} is inside the model folder ${model}: the command would write among the model's own files. Give --out a new file outside the model folder, e.g. beside it.`]);
    }
    expect(Buffer.compare(await readFile(weights), before)).toBe(0);
    const copy = path.join(await tmp(), 'train.jsonl');
    await copyFile(data, copy);
    const r = await cli('score', model, '--data', copy, '--out', copy, '--overwrite');
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${copy} is the input file ${copy}: the command would overwrite it. Give --out a new file name.`]);
    expect(await readFile(copy, 'utf8')).toBe(await readFile(data, 'utf8'));
  });

  it('refuses a path through a symlink into the model folder', async () => {
    const model = await modelCopy();
    const dir = await tmp();
    await symlink(model, path.join(dir, 'link'));
    await symlink(path.join(model, 'config.json'), path.join(dir, 'config-link.json'));
    const viaFolder = path.join(dir, 'link', 'scores.json');
    const r = await score(model, viaFolder);
    expect(r.code).toBe(2);
    expect(r.lines[0]).toBe(`gradprune: --out ${viaFolder} is inside the model folder ${model}: the command would write among the model's own files. Give --out a new file outside the model folder, e.g. beside it.`);
    const viaFile = await score(model, path.join(dir, 'config-link.json'), '--overwrite');
    expect(viaFile.code).toBe(2);
    expect(viaFile.lines[0]).toMatch(/is inside the model folder/);
    const prune = await cli('prune', model, '--scores', await scoresFor(model, dir), '--layers', '2', '--merge', '0', '--out', path.join(dir, 'link'));
    expect(prune.code).toBe(2);
    expect(prune.lines[0]).toMatch(/is the model folder itself/);
    expect(await listing(model)).toEqual(await listing(fixtureDir('tiny-llama')).then((names) => names.filter((n) => n !== 'reference')));
  });

  it('refuses an existing scores file (or its IGIA state) unless --overwrite, and a folder given as the file', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'scores.json');
    await writeFile(out, 'my earlier scores');
    const r = await score(fixtureDir('tiny-llama'), out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${out} already exists. Give --out a new file name, or add --overwrite to replace it (the old file is removed only once the new one is complete).`]);
    await writeFile(path.join(dir, 'b.igia.safetensors'), 'state');
    const igia = await score(fixtureDir('tiny-llama'), path.join(dir, 'b.json'));
    expect(igia.lines[0]).toBe(`gradprune: --out ${path.join(dir, 'b.igia.safetensors')} already exists. Give --out a new file name, or add --overwrite to replace it (the old file is removed only once the new one is complete).`);
    const folder = await score(fixtureDir('tiny-llama'), dir);
    expect(folder.code).toBe(2);
    expect(folder.lines).toEqual([`gradprune: --out ${dir} is a folder: the command writes one file. Give --out the path of the file to write, e.g. ${path.join(dir, 'scores.json')}.`]);
    expect(await readFile(out, 'utf8')).toBe('my earlier scores');
  });

  it('names an --out it cannot write: under a file, under /proc (at once, no hang)', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'x');
    const under = await score(fixtureDir('tiny-llama'), path.join(file, 'scores.json'));
    expect(under.code).toBe(2);
    expect(under.lines).toEqual([`gradprune: Cannot write --out ${path.join(file, 'scores.json')}: ${file} is a file, not a folder (ENOTDIR). Give --out a path in a folder you can write to.`]);
    const proc = await score(fixtureDir('tiny-llama'), '/proc/gradprune/scores.json');
    expect(proc.code).toBe(2);
    expect(proc.lines).toEqual(['gradprune: Cannot write --out /proc/gradprune/scores.json: /proc does not take new files (ENOENT). Give --out a path in a folder you can write to.']);
  }, 20_000);

  it.skipIf(process.getuid?.() === 0)('names a read-only folder (EACCES)', async () => {
    const dir = await tmp();
    await chmod(dir, 0o555);
    const r = await score(fixtureDir('tiny-llama'), path.join(dir, 'scores.json'));
    await chmod(dir, 0o755);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: Cannot write --out ${path.join(dir, 'scores.json')}: you may not write in ${dir} (EACCES). Give --out a path in a folder you can write to.`]);
  });
});

describe('prune / finetune / demo: an existing output folder, and one that holds an input', () => {
  const data = path.join(DATASETS, 'arc', 'arc_easy.jsonl');

  it('prune refuses an existing non-empty folder unless --overwrite; --overwrite passes the checks', async () => {
    const model = await modelCopy();
    const dir = await tmp();
    const scores = await scoresFor(model, dir);
    const out = path.join(dir, 'pruned');
    await mkdir(out);
    await writeFile(path.join(out, 'config.json'), 'a previous export');
    const r = await cli('prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${out} already exists. Give --out a new folder name, or add --overwrite to replace it (the old folder is removed only once the new one is complete).`]);
    expect(await readFile(path.join(out, 'config.json'), 'utf8')).toBe('a previous export');
  });

  it('finetune --overwrite refuses a folder that holds the model folder, or the data file', async () => {
    const model = await modelCopy();
    const parent = path.dirname(model);
    const r = await cli('finetune', model, '--data', data, '--merge-adapter', '--overwrite', '--out', parent);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${parent} holds the model folder ${model}: replacing it would delete the model. Give --out a new folder beside the model folder.`]);
    const out = await tmp();
    const dataHere = path.join(out, 'sub', 'train.jsonl');
    await mkdir(path.dirname(dataHere));
    await copyFile(data, dataHere);
    const held = await cli('finetune', model, '--data', dataHere, '--overwrite', '--out', out);
    expect(held.code).toBe(2);
    expect(held.lines).toEqual([`gradprune: --out ${out} holds sub/train.jsonl, which this command reads and the export would overwrite. Give --out another folder, or move ${dataHere} elsewhere first.`]);
    expect(await listing(model)).toEqual(await listing(await modelCopy()));
  });

  it('demo refuses, before scoring, a pruned/ folder already there, and an --out inside the embedded demo', async () => {
    const out = await tmp();
    await mkdir(path.join(out, 'pruned'));
    await writeFile(path.join(out, 'pruned', 'config.json'), '{}');
    const r = await cli('demo', '--out', out);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`gradprune: --out ${path.join(out, 'pruned')} already exists. Give --out a new folder name, or add --overwrite to replace it (the old folder is removed only once the new one is complete).`]);
    expect(await listing(out)).toEqual(['pruned']);
    const inside = await cli('demo', '--out', path.join(EMBEDDED_DEMO, 'out'));
    expect(inside.code).toBe(2);
    expect(inside.lines[0]).toMatch(/is inside the model folder .*public\/demo/);
  });
});
