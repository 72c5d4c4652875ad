// --overwrite through the real CLI entry point: an existing output (prune's folder, score's pair of files) is
// replaced as a whole once the new one is complete (nothing of the old one stays, nothing is left beside it), and
// without --overwrite it is refused and left as it was.
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelFingerprint } from '../../model/fingerprint';
import { openCheckpoint } from '../../model/checkpoint';
import { normalizeConfig } from '../../model/config';
import { openFolder } from '../../model/node-files';
import { TensorStore } from '../../model/safetensors';
import { cli } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';

describe('gradprune prune --overwrite (tiny-llama, --merge 0)', () => {
  it('replaces an existing folder only when asked, and only as a whole', async () => {
    const model = fixtureDir('tiny-llama');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-overwrite-'));
    const files = await openFolder(model);
    const config = normalizeConfig(JSON.parse(await files.get('config.json')!.text()));
    const fingerprint = await modelFingerprint({ config, store: await TensorStore.open(files) });
    const L = config.numLayers;
    const scores = path.join(dir, 'scores.json');
    await writeFile(scores, JSON.stringify({
      format: 'gradprune-scores', version: 1,
      model: { name: 'tiny-llama', architecture: 'LlamaForCausalLM', numLayers: L, fingerprint },
      layerScores: Array.from({ length: L }, (_, l) => L - l), layerScoresCode: Array.from({ length: L }, (_, l) => L - l),
      moduleScores: Array.from({ length: L }, () => [1, 1, 1, 1, 1, 1, 1]), losses: [1],
    }));
    const out = path.join(dir, 'pruned');
    await mkdir(out);
    await writeFile(path.join(out, 'model-00001-of-00002.safetensors'), 'a previous export');
    await writeFile(path.join(out, 'notes.txt'), 'mine');
    const args = ['prune', model, '--scores', scores, '--layers', '2', '--merge', '0', '--out', out];

    const refused = await cli(...args);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists\. Give --out a new folder name, or add --overwrite/);
    expect((await readdir(out)).sort()).toEqual(['model-00001-of-00002.safetensors', 'notes.txt']);

    const replaced = await cli(...args, '--overwrite');
    expect(replaced.stderr).not.toMatch(/gradprune:/);
    expect(replaced.code).toBe(0);
    expect(replaced.stderr).toContain(`replaced the previous ${out}`);
    expect(await readdir(dir)).toEqual(['pruned', 'scores.json']);
    const names = await readdir(out);
    expect(names).toContain('model.safetensors');
    expect(names).not.toContain('notes.txt');
    expect(names).not.toContain('model-00001-of-00002.safetensors');
    const pruned = await openCheckpoint(await openFolder(out), 'pruned');
    expect(pruned.config.numLayers).toBe(L - 2);
    expect(JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')).num_hidden_layers).toBe(L - 2);
  });
});

describe('gradprune score --overwrite (tiny-llama, 2 steps)', () => {
  it('replaces scores.json and its IGIA state together', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-overwrite-'));
    const out = path.join(dir, 'scores.json');
    await writeFile(out, 'my earlier scores');
    await writeFile(path.join(dir, 'scores.igia.safetensors'), 'my earlier state');
    const args = ['score', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'arc', 'arc_easy.jsonl'), '--steps', '2', '--batch', '1', '--seq', '16', '--out', out];
    expect((await cli(...args)).code).toBe(2);
    expect(await readFile(out, 'utf8')).toBe('my earlier scores');
    const r = await cli(...args, '--overwrite');
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['scores.igia.safetensors', 'scores.json']);
    expect(JSON.parse(await readFile(out, 'utf8')).losses).toHaveLength(2);
    expect((await readFile(path.join(dir, 'scores.igia.safetensors'))).byteLength).toBeGreaterThan(100);
  });
});
