import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { makePlan, type PrunePlan } from '../gradprune/plan';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { linearWeightName, LINEAR_MODULES, normalizeConfig } from '../model/config';
import { fromFloat32 } from '../model/dtype';
import { openFile, openFolder } from '../model/node-files';
import { numel, SafetensorsFile, TensorStore } from '../model/safetensors';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { exportCheckpoint } from '../gradprune/pruned-folder';
import { RECIPE_FILE } from './checkpoint';
import { prunedConfig } from './config';
import type { PruneRunInfo } from '../gradprune/recipe';
import { zipFolder } from './zip';

interface Fixture {
  checkpoint: Checkpoint;
  plan: PrunePlan;
  reference: TensorStore;
  merged: Map<string, Float32Array>;
  run: PruneRunInfo;
  ref: { layer_score: number[]; layer_score_code: number[]; plans: { tag: string; prune: number; merge: number; merged_elements: Record<string, number> }[] };
}

/** The fixture's checkpoint, its plan, and the reference pruned weights standing in for the GPU merge's output. */
async function fixture(name: string, tag: string): Promise<Fixture> {
  const dir = fixtureDir(name);
  const checkpoint = await openCheckpoint(await openFolder(dir), name);
  const ref = JSON.parse(await readFile(path.join(dir, 'reference/gradprune.json'), 'utf8'));
  const p = ref.plans.find((x: { tag: string }) => x.tag === tag);
  const plan = makePlan(ref.layer_score, checkpoint.config, { prune: p.prune, merge: p.merge });
  const reference = await TensorStore.open(new Map([['model.safetensors', await openFile(path.join(dir, `reference/pruned_${tag}.safetensors`))]]));
  const merged = new Map<string, Float32Array>();
  for (const r of new Set(Object.values(plan.receiver))) {
    for (const m of LINEAR_MODULES) merged.set(linearWeightName(r, m), await reference.readF32(linearWeightName(plan.newIndex[r]!, m)));
  }
  const run: PruneRunInfo = {
    baseModel: `fixtures/${name}`,
    settings: { rank: 8, alpha: 32, steps: 12, lr: 1e-3 },
    seed: 0,
    data: { fileName: 'train.jsonl', sha256: 'ab'.repeat(32), rows: 48 },
    scores: { layerScore: ref.layer_score, layerScoreCode: ref.layer_score_code },
    addedElements: p.merged_elements,
    evaluation: [{ metric: 'loss', before: 6.4, after: 6.6 }],
  };
  return { checkpoint, plan, reference, merged, run, ref };
}

async function bytesOf(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

describe('exportCheckpoint', () => {
  for (const name of SCORED_FIXTURE_MODELS) {
    it(`writes ${name} pruned (prune3_merge3) in its own dtype, re-openable, with reference values`, async () => {
      const { checkpoint, plan, reference, merged, run } = await fixture(name, 'prune3_merge3');
      const files = await exportCheckpoint(checkpoint, { plan, merged, run });
      expect([...files.keys()].sort()).toEqual(
        ['README.md', RECIPE_FILE, 'config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'].sort(),
      );
      const reopened = await openCheckpoint(files, 'exported');
      expect(reopened.dtype).toBe(checkpoint.dtype);
      expect(reopened.config.numLayers).toBe(plan.kept.length);
      expect([...reopened.store.tensors.keys()].sort()).toEqual([...reference.tensors.keys()].sort());
      expect(reopened.store.has('lm_head.weight')).toBe(!checkpoint.config.tiedEmbeddings);
      for (const [tensorName, info] of reference.tensors) {
        const got = reopened.store.info(tensorName);
        expect(got.shape).toEqual(info.shape);
        expect(got.dtype).toBe(checkpoint.dtype);
        const want = fromFloat32(await reference.readF32(tensorName), checkpoint.dtype);
        expect(Buffer.from(await reopened.store.readBytes(tensorName)).equals(Buffer.from(want)), tensorName).toBe(true);
      }
      const fileBytes = await bytesOf(files.get('model.safetensors')!);
      const headerLen = Number(new DataView(fileBytes.buffer, fileBytes.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(fileBytes.subarray(8, 8 + headerLen)));
      expect(header.__metadata__).toEqual({ format: 'pt' });

      // config.json: same keys in the same order; only the layer count (and layer_types) change.
      const original = JSON.parse(await checkpoint.files.get('config.json')!.text());
      const written = JSON.parse(await files.get('config.json')!.text());
      expect(Object.keys(written)).toEqual(Object.keys(original));
      expect(written.num_hidden_layers).toBe(plan.kept.length);
      for (const k of Object.keys(original)) if (k !== 'num_hidden_layers' && k !== 'layer_types') expect(written[k]).toEqual(original[k]);
      if (original.layer_types) expect(written.layer_types).toEqual(original.layer_types.slice(0, plan.kept.length));
      else expect(written.layer_types).toBeUndefined();

      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
        expect(Buffer.from(await bytesOf(files.get(f)!)).equals(Buffer.from(await bytesOf(checkpoint.files.get(f)!))), f).toBe(true);
      }

      const recipe = JSON.parse(await files.get(RECIPE_FILE)!.text());
      const configSha = createHash('sha256').update(await bytesOf(checkpoint.files.get('config.json')!)).digest('hex');
      expect(recipe.model).toEqual({ name: run.baseModel, config_sha256: configSha, dtype: checkpoint.dtype, num_hidden_layers: plan.numLayers });
      expect(recipe.plan.kept_layers).toEqual(plan.kept);
      expect(recipe.plan.merged_layers).toEqual(plan.merged);
      expect(recipe.plan.merged_elements).toEqual(run.addedElements);
      expect(recipe.scores.layer_score).toEqual(run.scores.layerScore);
      expect(recipe.data).toEqual({ file: 'train.jsonl', sha256: 'ab'.repeat(32), rows: 48 });
      expect(recipe.seed).toBe(0);
      expect(recipe.settings).toEqual(run.settings);

      const card = await files.get('README.md')!.text();
      expect(card).toContain(`base_model: "${run.baseModel}"`);
      expect(card).toContain('arxiv.org/abs/2601.19503');
      expect(card).toContain(`pruned to ${plan.kept.length} of ${plan.numLayers} layers`);
      for (const p of plan.merged) expect(card).toContain(`| ${p} | ${run.scores.layerScore[p].toExponential(4)} | ${run.scores.layerScoreCode![p].toExponential(4)} | merged into ${plan.receiver[p]} |`);
      expect(card).toContain('| loss | 6.4000 | 6.6000 |');
    });
  }

  it('shards tiny-llama (F32, untied) above a size limit with an HF index that re-opens', async () => {
    const { checkpoint, plan, reference, merged, run } = await fixture('tiny-llama', 'prune2_merge1');
    const files = await exportCheckpoint(checkpoint, { plan, merged, run, maxShardBytes: 300_000 });
    const shards = [...files.keys()].filter((n) => n.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThan(1);
    shards.forEach((s, i) => expect(s).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    expect(files.has('model.safetensors')).toBe(false);
    const index = JSON.parse(await files.get('model.safetensors.index.json')!.text());
    const totalBytes = [...reference.tensors.values()].reduce((s, t) => s + numel(t.shape) * 4, 0);
    expect(index.metadata.total_size).toBe(totalBytes);
    for (const s of shards) {
      const shard = await SafetensorsFile.open(files.get(s)!, s);
      const dataBytes = [...shard.tensors.values()].reduce((sum, t) => sum + t.end - t.begin, 0);
      expect(dataBytes, s).toBeLessThanOrEqual(300_000);
    }

    const reopened = await openCheckpoint(files, 'sharded');
    expect(reopened.config.numLayers).toBe(4);
    expect(reopened.store.has('lm_head.weight')).toBe(true);
    expect([...reopened.store.tensors.keys()].sort()).toEqual([...reference.tensors.keys()].sort());
    for (const name of reference.tensors.keys()) expect(await reopened.store.readF32(name)).toEqual(await reference.readF32(name));
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shards));
  });

  it('zips the folder so that it unzips to the same files', async () => {
    const { checkpoint, plan, merged, run } = await fixture('tiny-qwen2', 'prune2_merge1');
    const files = await exportCheckpoint(checkpoint, { plan, merged, run, maxShardBytes: 400_000 });
    const zip = await zipFolder(files, 'tiny-qwen2-pruned');
    const unzipped = unzipSync(await bytesOf(zip));
    expect(Object.keys(unzipped).sort()).toEqual([...files.keys()].map((n) => `tiny-qwen2-pruned/${n}`).sort());
    for (const [name, blob] of files) {
      expect(Buffer.from(unzipped[`tiny-qwen2-pruned/${name}`]).equals(Buffer.from(await bytesOf(blob))), name).toBe(true);
    }
    const reopened = await TensorStore.open(new Map(Object.entries(unzipped).map(([n, b]) => [n.split('/')[1], new Blob([b as Uint8Array<ArrayBuffer>])])));
    expect(reopened.has('model.layers.2.mlp.down_proj.weight')).toBe(true);
    expect(reopened.has('model.layers.3.mlp.down_proj.weight')).toBe(false);
  });

  it('refuses a plan for another layer count, a merged weight the model lacks, and zero layers', async () => {
    const { checkpoint, plan, merged, run } = await fixture('tiny-mistral', 'prune2_merge1');
    const otherConfig = normalizeConfig({ ...checkpoint.config.raw, num_hidden_layers: 6 });
    const otherPlan = makePlan([1, 2, 3, 4, 5, 6], otherConfig, { prune: 1 });
    await expect(exportCheckpoint(checkpoint, { plan: otherPlan, merged, run })).rejects.toThrow(/plan is for 6 layers but the model has 4/);
    const bogus = new Map([['model.layers.9.mlp.up_proj.weight', new Float32Array(4)]]);
    await expect(exportCheckpoint(checkpoint, { plan, merged: bogus, run })).rejects.toThrow(GradPruneError);
    await expect(exportCheckpoint(checkpoint, { plan, merged: bogus, run })).rejects.toThrow(/"model.layers.9.mlp.up_proj.weight" is not in the checkpoint/);
    expect(() => prunedConfig(checkpoint.config.raw, 0)).toThrow(/at least one layer/);
  });
});
