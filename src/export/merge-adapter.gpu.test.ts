// Merging a LoRA adapter into the weights (W + (alpha/r)·B·A): the engine on the merged weights gives the logits of
// the engine running with the adapter, and the loss Hugging Face + PEFT computed with that adapter (lora_grad fixture);
// the exported folder re-opens as a checkpoint of the same dtype, every merged tensor rounded once from f32.
import { describe, expect, it } from 'vitest';
import { openCheckpoint, expectedTensors, type Checkpoint } from '../model/checkpoint';
import { LINEAR_MODULES, linearWeightName } from '../model/config';
import { fromFloat32 } from '../model/dtype';
import { openFolder } from '../model/node-files';
import { TensorStore } from '../model/safetensors';
import { DEFAULT_LORA, loadLoraAdapters, type LoraAdapter } from '../nn/lora';
import { GpuModel, type Batch } from '../nn/model';
import { maxScaledAbsError, relError } from '../nn/reference/compare';
import { openReference } from '../nn/reference/fixture';
import { fixtureDir } from '../testing/paths';
import { exportMergedCheckpoint, RECOVERY_FILE } from './merge-adapter';
import { testGpu } from '../testing/gpu';

const gpu = await testGpu();


const bytesOf = async (blob: Blob) => new Uint8Array(await blob.arrayBuffer());

async function logitsOf(ckpt: Pick<Checkpoint, 'config' | 'store'>, batch: Batch, B: number, T: number, adapters: LoraAdapter[] | null): Promise<{ logits: Float32Array; loss: number }> {
  const model = await GpuModel.load(gpu, ckpt.config, ckpt.store, { batchSize: B, seqLen: T, lora: adapters ? DEFAULT_LORA : null, adapters: adapters ?? undefined, training: false });
  try {
    const { loss } = await model.run(batch);
    return { logits: await model.readLogits(), loss };
  } finally {
    model.destroy();
  }
}

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'])('merging the lora_grad adapter into %s', (name) => {
  it('gives the logits of the engine with the adapter, the fixture loss, and a re-openable checkpoint in the same dtype', async () => {
    const dir = fixtureDir(name);
    const ckpt = await openCheckpoint(await openFolder(dir), name);
    const ref = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(ckpt.config, DEFAULT_LORA, (n) => ref.readF32(n));
    const [B, T] = ref.info('input_ids').shape;
    const batch: Batch = { B, T, inputIds: await ref.readI32('input_ids'), lossMask: await ref.readI32('loss_mask'), padTokenId: 0 };

    // Merged in f32 (the checkpoint's dtype overridden), so the only difference from the adapter path is summation order.
    const f32Files = await exportMergedCheckpoint(ckpt, { lora: DEFAULT_LORA, adapters, dtype: 'F32' });
    const merged = await openCheckpoint(f32Files, name);
    expect(merged.dtype).toBe('F32');
    const withAdapter = await logitsOf(ckpt, batch, B, T, adapters);
    const onMerged = await logitsOf(merged, batch, B, T, null);
    expect(maxScaledAbsError(onMerged.logits, withAdapter.logits)).toBeLessThanOrEqual(1e-4);
    // Hugging Face + PEFT's loss with this adapter, reproduced by the merged weights alone.
    expect(relError(onMerged.loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    // And the merge changed the model: the base weights give another loss.
    const base = await logitsOf(ckpt, batch, B, T, null);
    expect(relError(base.loss, onMerged.loss)).toBeGreaterThan(1e-3);

    // The default export keeps the checkpoint's dtype: merged tensors are the f32 merge rounded once, the rest byte for byte.
    const files = await exportMergedCheckpoint(ckpt, { lora: DEFAULT_LORA, adapters, recovery: { steps: 0 } });
    const reopened = await openCheckpoint(files, name);
    expect(reopened.dtype).toBe(ckpt.dtype);
    expect(reopened.dtype).toBe(name === 'tiny-llama' ? 'F32' : 'BF16');
    expect(reopened.config.numLayers).toBe(ckpt.config.numLayers);
    expect(reopened.store.has('lm_head.weight')).toBe(!ckpt.config.tiedEmbeddings);
    const store = await TensorStore.open(files);
    const linear = new Set(Array.from({ length: ckpt.config.numLayers }, (_, l) => LINEAR_MODULES.map((m) => linearWeightName(l, m))).flat());
    for (const { name: t } of expectedTensors(ckpt.config)) {
      const got = await store.readBytes(t);
      const want = linear.has(t) ? fromFloat32(await merged.store.readF32(t), ckpt.dtype) : await ckpt.store.readBytes(t);
      expect(Buffer.from(got).equals(Buffer.from(want)), t).toBe(true);
    }
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      expect(Buffer.from(await bytesOf(files.get(f)!)).equals(Buffer.from(await bytesOf(ckpt.files.get(f)!))), f).toBe(true);
    }
    expect(JSON.parse(await files.get(RECOVERY_FILE)!.text())).toEqual({ steps: 0 });
  });
});
