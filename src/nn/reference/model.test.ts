// The CPU reference against Hugging Face's numbers: logits of a plain forward, and loss + every LoRA gradient.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LORA, loadLoraAdapters } from '../lora';
import { FIXTURE_MODELS, fixtureDir } from '../../testing/paths';
import { maxScaledAbsError, relError, relL2 } from './compare';
import { loadFixtureModel, openReference } from './fixture';
import { loraState, ReferenceModel } from './model';

describe.each(FIXTURE_MODELS)('CPU reference on %s', (name) => {
  const dir = fixtureDir(name);

  it('reproduces the logits of forward.safetensors', async () => {
    const { weights } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const { logits } = new ReferenceModel(weights).forward(await ref.readI32('input_ids'), B, T);
    expect(maxScaledAbsError(logits, await ref.readF32('logits'))).toBeLessThanOrEqual(1e-4);
  });

  it('reproduces the loss and every LoRA gradient of lora_grad.safetensors', async () => {
    const { config, weights } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n));
    const model = new ReferenceModel(weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const [B, T] = ref.info('input_ids').shape;
    const { loss, grads } = model.lossAndGrads(await ref.readI32('input_ids'), await ref.readI32('loss_mask'), B, T);
    expect(relError(loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    expect(grads.size).toBe(config.numLayers * 7);
    for (const a of adapters) {
      const g = grads.get(a.name)!;
      expect(relL2(g.dA, await ref.readF32(`grad.${a.name}.lora_A.weight`)), `${a.name} dA`).toBeLessThanOrEqual(1e-4);
      expect(relL2(g.dB, await ref.readF32(`grad.${a.name}.lora_B.weight`)), `${a.name} dB`).toBeLessThanOrEqual(1e-4);
    }
  });
});
