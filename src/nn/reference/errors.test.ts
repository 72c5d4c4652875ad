// Bad input to the CPU reference becomes a GradPruneError that names the tensor or token.
import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../../model/config';
import { openFolder } from '../../model/node-files';
import { TensorStore } from '../../model/safetensors';
import { fixtureDir } from '../../testing/paths';
import { loadFixtureModel } from './fixture';
import { ReferenceModel } from './model';
import { loadModelWeights } from './weights';

describe('CPU reference input checks', () => {
  it('refuses weights whose shapes disagree with config.json, naming the tensor', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    const raw = JSON.parse(await files.get('config.json')!.text());
    const store = await TensorStore.open(files);
    const wrong = normalizeConfig({ ...raw, intermediate_size: 128 });
    await expect(loadModelWeights(wrong, store)).rejects.toThrow(/model\.layers\.0\.mlp\.gate_proj\.weight.*\[176, 64\].*\[128, 64\]/);
  });

  it('refuses a Qwen3 config over weights without q/k norms, naming the missing tensor', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    const raw = JSON.parse(await files.get('config.json')!.text());
    const qwen3 = normalizeConfig({ ...raw, model_type: 'qwen3' });
    await expect(loadModelWeights(qwen3, await TensorStore.open(files))).rejects.toThrow(/model\.layers\.0\.self_attn\.q_norm\.weight/);
  });

  it('refuses token ids outside the vocabulary, naming the position', async () => {
    const { weights } = await loadFixtureModel(fixtureDir('tiny-llama'));
    expect(() => new ReferenceModel(weights).forward(Int32Array.from([1, 2, 512]), 1, 3)).toThrow(/Token id 512 at position 2/);
  });
});
