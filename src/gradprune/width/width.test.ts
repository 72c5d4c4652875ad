// Width pruning on the fixtures: GQA dependency groups as HF's attention reads heads, unit importance against sums
// written out here, the plan's counts and bad targets, and the exported folder: our loader opens it with the new
// widths and its tensors equal the reference weights sliced independently (src/testing/width-reference.ts).
import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../../errors';
import { openCheckpoint } from '../../model/checkpoint';
import { LINEAR_MODULES, linearWeightName, normalizeConfig } from '../../model/config';
import { openFolder } from '../../model/node-files';
import { numel } from '../../model/safetensors';
import { loadFixtureModel } from '../../nn/reference/fixture';
import { cli } from '../../testing/cli';
import { fixtureDir } from '../../testing/paths';
import { slicedReferenceWeights } from '../../testing/width-reference';
import { exportWidthPruned, planWidthPrune } from '.';
import { attentionUnits, mlpUnit } from './groups';
import { unitScores } from './importance';
import { parseParamCount, resolveWidthCounts, widthPrunedConfig } from './plan';

const fixtureCheckpoint = async (name: string) => openCheckpoint(await openFolder(fixtureDir(name)), name);

const run = { baseModel: 'fixture', importance: 'l1', reduction: 'sum', seed: null } as const;

describe('GQA dependency groups', () => {
  it('tiny-llama (4 query / 2 kv heads, head_dim 16): each kv head with its two query heads', async () => {
    const { config } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const units = attentionUnits(config);
    expect(units.map((u) => [u.kvHead, u.queryHeads])).toEqual([[0, [0, 1]], [1, [2, 3]]]);
    expect(units[1].slices).toEqual([
      { module: 'q_proj', axis: 'rows', ranges: [[32, 64]] },
      { module: 'k_proj', axis: 'rows', ranges: [[16, 32]] },
      { module: 'v_proj', axis: 'rows', ranges: [[16, 32]] },
      { module: 'o_proj', axis: 'cols', ranges: [[32, 64]] },
    ]);
    expect(mlpUnit(7).slices.map((s) => [s.module, s.axis, s.ranges])).toEqual([['gate_proj', 'rows', [[7, 8]]], ['up_proj', 'rows', [[7, 8]]], ['down_proj', 'cols', [[7, 8]]]]);
  });

  it('tiny-mistral (5 query / 1 kv head): one unit holding every head, so no head can be removed', async () => {
    const { config } = await loadFixtureModel(fixtureDir('tiny-mistral'));
    const units = attentionUnits(config);
    expect(units).toHaveLength(1);
    expect(units[0].queryHeads).toEqual([0, 1, 2, 3, 4]);
    expect(units[0].slices.map((s) => s.ranges)).toEqual([[[0, 80]], [[0, 16]], [[0, 16]], [[0, 80]]]);
    expect(() => resolveWidthCounts(config, { heads: 1 })).toThrow(/1 key\/value head per layer \(each shared by 5 query heads\).*--heads between 0 and 0/);
  });
});

describe('unit importance', () => {
  it('l1 (sum over q, k, v, o) and l2 (max over gate, up, down) equal the sums written out from the weights', async () => {
    const fm = await loadFixtureModel(fixtureDir('tiny-llama'));
    const { config: c, weights: w } = fm;
    const l1 = await unitScores(c, fm.store, { importance: 'l1' });
    const l2max = await unitScores(c, fm.store, { importance: 'l2', reduction: 'max' });
    const HD = c.headDim;
    for (const l of [0, 5]) {
      const lin = w.layers[l].linear;
      for (let kv = 0; kv < 2; kv++) {
        let want = 0;
        for (let h = 2 * kv; h < 2 * kv + 2; h++) {
          for (let d = 0; d < HD; d++) {
            for (let i = 0; i < 64; i++) want += Math.abs(lin.q_proj.W[(h * HD + d) * 64 + i]) + Math.abs(lin.o_proj.W[i * 64 + h * HD + d]);
          }
        }
        for (let d = 0; d < HD; d++) for (let i = 0; i < 64; i++) want += Math.abs(lin.k_proj.W[(kv * HD + d) * 64 + i]) + Math.abs(lin.v_proj.W[(kv * HD + d) * 64 + i]);
        expect(l1[l].attention[kv]).toBeCloseTo(want, 6);
      }
      for (const ch of [0, 99, 175]) {
        let gate = 0, up = 0, down = 0;
        for (let i = 0; i < 64; i++) {
          gate += lin.gate_proj.W[ch * 64 + i] ** 2;
          up += lin.up_proj.W[ch * 64 + i] ** 2;
          down += lin.down_proj.W[i * 176 + ch] ** 2;
        }
        expect(l2max[l].mlp[ch]).toBeCloseTo(Math.max(gate, up, down), 9);
      }
    }
  });

  it('random is seeded: the same seed gives the same scores, another seed others', async () => {
    const fm = await loadFixtureModel(fixtureDir('tiny-llama'));
    const a = await unitScores(fm.config, fm.store, { importance: 'random', seed: 3 });
    const b = await unitScores(fm.config, fm.store, { importance: 'random', seed: 3 });
    const other = await unitScores(fm.config, fm.store, { importance: 'random', seed: 4 });
    expect(a).toEqual(b);
    expect(a[2].mlp).not.toEqual(other[2].mlp);
    expect(a.every((s) => s.mlp.every((v) => v >= 0 && v < 1))).toBe(true);
  });

  it('a Taylor importance without gradients is refused with what to give; the CLI asks for --data before any work', async () => {
    await expect(planWidthPrune(await fixtureCheckpoint('tiny-llama'), { ratio: 0.2 }, { importance: 'param_first' })).rejects.toThrow(/param_first importance needs the task data's gradients.*--data FILE.*l1, l2 or random/);
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'width-prune-')), 'a');
    const r = await cli('width-prune', fixtureDir('tiny-llama'), '--ratio', '0.2', '--importance', 'param_second', '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--importance param_second needs --data <file>/);
  });
});

describe('width-pruned export', () => {
  it.each([
    ['tiny-llama', { heads: 1, channels: 40 }],
    ['tiny-qwen2', { heads: 1, channels: 56 }],
    ['tiny-qwen3', { heads: 1, channels: 33 }],
    ['tiny-mistral', { channels: 50 }],
  ] as const)('%s: our loader opens it with the new widths; every tensor equals the reference weights sliced by hand', async (name, target) => {
    const dir = fixtureDir(name);
    const fm = await loadFixtureModel(dir);
    const c = fm.config;
    const { plan, scores } = await planWidthPrune(await fixtureCheckpoint(name), target, { importance: 'l1' });
    // The removed units are each layer's lowest-scoring ones.
    for (const [l, s] of scores.entries()) {
      const lowestKv = [...s.attention.keys()].sort((a, b) => s.attention[a] - s.attention[b]).slice(0, 'heads' in target ? target.heads : 0);
      expect(plan.layers[l].keptKvHeads.some((h) => lowestKv.includes(h))).toBe(false);
      const maxRemoved = Math.max(...[...s.mlp.keys()].filter((i) => !plan.layers[l].keptChannels.includes(i)).map((i) => s.mlp[i]));
      expect(Math.min(...plan.layers[l].keptChannels.map((i) => s.mlp[i]))).toBeGreaterThanOrEqual(maxRemoved);
    }
    const ckpt = await fixtureCheckpoint(name);
    const files = await exportWidthPruned(ckpt, plan, run);
    const out = await openCheckpoint(files, 'pruned');
    const heads = 'heads' in target ? target.heads : 0;
    const kv = c.numKvHeads - heads;
    expect([out.config.numKvHeads, out.config.numHeads, out.config.intermediateSize, out.config.headDim, out.config.numLayers]).toEqual([
      kv, (kv * c.numHeads) / c.numKvHeads, c.intermediateSize - target.channels, c.headDim, c.numLayers,
    ]);
    expect(out.dtype).toBe(ckpt.dtype);
    const json = JSON.parse(await files.get('config.json')!.text());
    expect(Object.keys(json).filter((k) => !['num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'head_dim'].includes(k))).toEqual(
      Object.keys(c.raw).filter((k) => !['num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'head_dim'].includes(k)),
    );
    // head_dim is stated whenever hidden_size / num_attention_heads no longer gives it (tiny-qwen2: 96 / 3 = 32 ≠ 16).
    if (c.hiddenSize / out.config.numHeads !== c.headDim) expect(json.head_dim).toBe(c.headDim);
    expect(JSON.parse(await files.get('gradprune_recipe.json')!.text()).plan.head_dim_stated).toBe(c.raw.head_dim == null && heads > 0);
    expect(await files.get('README.md')!.text()).toMatch(new RegExp(`${c.numHeads} / ${c.numKvHeads} \\| ${out.config.numHeads} / ${out.config.numKvHeads} \\|`));

    const want = slicedReferenceWeights(fm.weights, plan.layers);
    for (const [l, layer] of want.layers.entries()) {
      for (const m of LINEAR_MODULES) {
        const wName = linearWeightName(l, m);
        expect(await out.store.readF32(wName), wName).toEqual(layer.linear[m].W);
        if (layer.linear[m].b) expect(await out.store.readF32(wName.replace(/weight$/, 'bias')), `${wName} bias`).toEqual(layer.linear[m].b);
      }
      if (c.qkNorm) {
        expect(await out.store.readF32(`model.layers.${l}.self_attn.q_norm.weight`)).toEqual(layer.qNorm);
        expect(await out.store.readF32(`model.layers.${l}.self_attn.k_norm.weight`)).toEqual(layer.kNorm);
      }
      expect(await out.store.readF32(`model.layers.${l}.input_layernorm.weight`)).toEqual(layer.inputNorm);
    }
    expect(await out.store.readBytes('model.embed_tokens.weight')).toEqual(await ckpt.store.readBytes('model.embed_tokens.weight'));
    expect(out.store.has('lm_head.weight')).toBe(!c.tiedEmbeddings);
    // Stored bytes sliced, never rounded: the weights are the original dtype's exact values.
    const first = linearWeightName(0, 'q_proj');
    expect((await out.store.readBytes(first)).byteLength).toBe(numel(out.store.info(first).shape) * (ckpt.dtype === 'F32' ? 4 : 2));
    const recipe = JSON.parse(await files.get('gradprune_recipe.json')!.text());
    expect(recipe.plan.kept_kv_heads).toEqual(plan.layers.map((p) => p.keptKvHeads));
    expect(recipe.plan.params_after).toBe([...out.store.tensors.keys()].reduce((s, n) => s + numel(out.store.info(n).shape), 0));
  });

  it('the parameter count after equals the count by hand (tiny-llama, 1 of 2 kv heads and 40 of 176 channels per layer)', async () => {
    const { plan } = await planWidthPrune(await fixtureCheckpoint('tiny-llama'), { heads: 1, channels: 40 }, { importance: 'l1' });
    const C = 64, V = 512, L = 6, HD = 16, F = 176 - 40;
    const layer = 2 * C + 2 * HD * C /* q: 2 query heads */ + 2 * HD * C /* k, v: 1 kv head */ + C * 2 * HD /* o */ + 3 * C * F;
    expect(plan.after.params).toBe(2 * V * C + C + L * layer);
    expect(plan.before.params).toBe(2 * V * C + C + L * (2 * C + 4 * HD * C + 2 * 2 * HD * C + C * 4 * HD + 3 * C * 176));
  });

  it('a ratio is of all parameters: the result removes that fraction to within one channel per layer', async () => {
    for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-mistral']) {
      const ckpt = await fixtureCheckpoint(name);
      const c = ckpt.config;
      for (const ratio of [0.05, 0.2, 0.3, 0.45]) {
        const { plan } = await planWidthPrune(ckpt, { ratio }, { importance: 'l2' });
        const removed = plan.before.params - plan.after.params;
        expect(Math.abs(removed - ratio * plan.before.params), `${name} ${ratio}`).toBeLessThanOrEqual(c.numLayers * 3 * c.hiddenSize);
      }
    }
  });
});

describe('a target parameter count', () => {
  it('reads 5.39B, 900M, 750k and plain counts, and names the option for anything else', () => {
    expect([parseParamCount('5.39B'), parseParamCount('900M'), parseParamCount('750k'), parseParamCount('1234567'), parseParamCount('.5m')]).toEqual([5_390_000_000, 900_000_000, 750_000, 1_234_567, 500_000]);
    for (const bad of ['lots', '5.39 GB', '-3M', '']) expect(() => parseParamCount(bad), bad).toThrow(/is not a parameter count.*5\.39B, 900M/);
  });

  it('ends within one channel per layer of the asked count (tiny-llama: 342,848 parameters by hand), and refuses one not below the model', async () => {
    const ckpt = await fixtureCheckpoint('tiny-llama');
    const C = 64, L = 6;
    // 2 V C (embedding, lm_head) + final norm + L × (norms, q, k, v, o, gate/up/down) with V 512, 4 / 2 heads of 16, 176 channels.
    expect(2 * 512 * C + C + L * (2 * C + 4 * 16 * C + 2 * 2 * 16 * C + C * 4 * 16 + 3 * C * 176)).toBe(342_848);
    for (const target of [300_000, 280_000, 250_000]) {
      const { plan } = await planWidthPrune(ckpt, { params: target }, { importance: 'l1' });
      expect(plan.before.params).toBe(342_848);
      expect(Math.abs(plan.after.params - target), String(target)).toBeLessThanOrEqual(L * 3 * C);
    }
    for (const params of [342_848, 400_000, 0]) expect(() => resolveWidthCounts(ckpt.config, { params })).toThrow(/is not below the model's 342,848.*Give --target-params below 342,848/s);
  });

  it('the CLI takes --target-params and prints the parameters it ends with', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'width-prune-'));
    const r = await cli('width-prune', fixtureDir('tiny-llama'), '--target-params', '0.28M', '--out', path.join(tmp, 'p'));
    expect(r.code, r.stderr).toBe(0);
    const after = Number(/parameters 0\.343 M → (0\.\d+) M/.exec(r.stdout)?.[1]);
    expect(Math.abs(after * 1e6 - 280_000)).toBeLessThanOrEqual(6 * 3 * 64 + 500);
    const bad = await cli('width-prune', fixtureDir('tiny-llama'), '--target-params', 'small', '--out', path.join(tmp, 'q'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"small" is not a parameter count/);
  });
});

describe('width-pruned config.json', () => {
  it('states head_dim beside num_attention_heads, or fills a "head_dim": null, and names num_key_value_heads when the config left it out', async () => {
    const raw = JSON.parse(await readFile(path.join(fixtureDir('tiny-qwen2'), 'config.json'), 'utf8'));
    const withNull = widthPrunedConfig(normalizeConfig({ ...raw, head_dim: null }), 1, 0);
    expect([withNull.head_dim, withNull.num_attention_heads, withNull.num_key_value_heads]).toEqual([16, 3, 1]);
    const keys = Object.keys(widthPrunedConfig(normalizeConfig(raw), 1, 0));
    expect(keys[keys.indexOf('num_attention_heads') + 1]).toBe('head_dim');
    const { num_key_value_heads: _, ...mha } = raw;
    const pruned = widthPrunedConfig(normalizeConfig({ ...mha, num_attention_heads: 6 }), 2, 0);
    expect([pruned.num_attention_heads, pruned.num_key_value_heads, pruned.head_dim]).toEqual([4, 4, 16]);
    expect(normalizeConfig(pruned).headDim).toBe(16);
  });
});

describe('bad width targets', () => {
  it('refuses a ratio ≥ 1 or ≤ 0, one beyond what width pruning can remove, and more heads or channels than exist', async () => {
    const { config: llama } = await loadFixtureModel(fixtureDir('tiny-llama'));
    for (const ratio of [1, 1.5, 0, -0.1]) expect(() => resolveWidthCounts(llama, { ratio })).toThrow(/must be between 0 and 1 \(exclusive\)/);
    expect(() => resolveWidthCounts(llama, { ratio: 0.95 })).toThrow(/cannot be reached by width pruning.*Give --ratio below 0\.\d+/);
    expect(() => resolveWidthCounts(llama, { heads: 2 })).toThrow(/Cannot remove 2 key\/value heads: the model has 2 key\/value heads per layer.*between 0 and 1/);
    expect(() => resolveWidthCounts(llama, { channels: 176 })).toThrow(/Cannot remove 176 intermediate channels: the model has 176.*between 0 and 175/);
    expect(() => resolveWidthCounts(llama, { heads: 0, channels: 0 })).toThrow(/Nothing to remove/);
    const err = (() => {
      try {
        resolveWidthCounts(llama, { heads: 5 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).subject).toBe('heads');
  });

  it('the CLI: exit 2 with the reason for --ratio 1, --ratio with --heads, and a model family it does not read', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'width-prune-'));
    const r1 = await cli('width-prune', fixtureDir('tiny-llama'), '--ratio', '1', '--out', path.join(tmp, 'a'));
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/The ratio 1 must be between 0 and 1/);
    const r2 = await cli('width-prune', fixtureDir('tiny-llama'), '--ratio', '0.2', '--heads', '1', '--out', path.join(tmp, 'a'));
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/Give one of --ratio R .*--target-params N .* or --heads N/);
    const gemma = path.join(tmp, 'gemma');
    await cp(fixtureDir('tiny-llama'), gemma, { recursive: true, filter: (src) => !src.includes('reference') });
    const raw = JSON.parse(await readFile(path.join(gemma, 'config.json'), 'utf8'));
    await writeFile(path.join(gemma, 'config.json'), JSON.stringify({ ...raw, model_type: 'gemma', architectures: ['GemmaForCausalLM'] }));
    const r3 = await cli('width-prune', gemma, '--ratio', '0.2', '--out', path.join(tmp, 'b'));
    expect(r3.code).not.toBe(0);
    expect(r3.stderr).toMatch(/model type "gemma" is not supported.*llama \(LlamaForCausalLM\)/);
  });

  it('the CLI writes the folder, which our loader opens with the new widths', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'width-prune-'));
    const out = path.join(tmp, 'pruned');
    const r = await cli('width-prune', fixtureDir('tiny-qwen2'), '--heads', '1', '--importance', 'random', '--seed', '7', '--uniform', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/key\/value heads 2 → 1/);
    const ckpt = await openCheckpoint(await openFolder(out), 'pruned');
    expect([ckpt.config.numHeads, ckpt.config.numKvHeads, ckpt.config.headDim]).toEqual([3, 1, 16]);
    const recipe = JSON.parse(await readFile(path.join(out, 'gradprune_recipe.json'), 'utf8'));
    expect([recipe.settings.importance, recipe.seed]).toEqual(['random', 7]);
  });
});

describe('gradprune width-prune: --out must not touch the inputs', () => {
  /** A private copy of tiny-llama's top-level files (a failing refusal could never write into the shared fixtures). */
  async function modelCopy(): Promise<string> {
    const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'width-prune-')), 'tiny-llama');
    await cp(fixtureDir('tiny-llama'), dir, { recursive: true, filter: (src) => !src.includes('reference') });
    return dir;
  }
  const listing = async (dir: string) => (await readdir(dir)).sort();

  it('refuses the model folder, a folder inside it and the --data file, writing nothing', async () => {
    const model = await modelCopy();
    const before = await listing(model);
    const data = path.join(path.dirname(model), 'data.jsonl');
    await writeFile(data, '{"text": "a"}\n');
    for (const out of [model, path.join(model, 'pruned'), data]) {
      const r = await cli('width-prune', model, '--channels', '8', '--data', data, '--out', out);
      expect(r.code, out).toBe(2);
      expect(r.stderr).toMatch(/^gradprune: --out .* (is the model folder itself|is inside the model folder|is the input file)/m);
    }
    expect(await listing(model)).toEqual(before);
    expect(await readFile(data, 'utf8')).toBe('{"text": "a"}\n');
  });

  it('an existing output is replaced only with --overwrite', async () => {
    const model = await modelCopy();
    const out = path.join(path.dirname(model), 'pruned');
    expect((await cli('width-prune', model, '--channels', '8', '--out', out)).code).toBe(0);
    const again = await cli('width-prune', model, '--channels', '16', '--out', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--overwrite/);
    expect(JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')).intermediate_size).toBe(168);
    expect((await cli('width-prune', model, '--channels', '16', '--out', out, '--overwrite')).code).toBe(0);
    expect(JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')).intermediate_size).toBe(160);
  });
});
