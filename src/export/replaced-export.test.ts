// The checkpoint with some tensors replaced (partial-layer fine-tuning's export): replaced tensors hold the given
// values rounded once to the checkpoint's dtype, every other tensor keeps its exact bytes, and a tied checkpoint
// whose lm_head is replaced comes back untied (lm_head.weight written, tie_word_embeddings false, embedding unchanged).
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../model/checkpoint';
import { fromFloat32 } from '../model/dtype';
import { openFolder } from '../model/node-files';
import { seededRandom } from '../random';
import { fixtureDir } from '../testing/paths';
import { exportReplacedCheckpointTo } from './merge-adapter';
import { MemorySink } from './sink';

describe.each(['tiny-llama', 'tiny-qwen2'])('exportReplacedCheckpointTo on %s', (name) => {
  it('writes the replaced tensors in the checkpoint dtype, keeps the rest byte for byte, unties a tied lm_head', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir(name)), name);
    const c = ckpt.config;
    const random = seededRandom(5);
    const last = `model.layers.${c.numLayers - 1}.mlp.down_proj.weight`;
    const replaced = new Map([
      [last, Float32Array.from({ length: c.hiddenSize * c.intermediateSize }, () => random() - 0.5)],
      ['lm_head.weight', Float32Array.from({ length: c.vocabSize * c.hiddenSize }, () => random() - 0.5)],
    ]);
    const sink = new MemorySink();
    await exportReplacedCheckpointTo(sink, ckpt, { replaced, recovery: { kind: 'test' } });
    const out = await openCheckpoint(sink.files, 'exported');
    expect(out.dtype).toBe(ckpt.dtype);
    expect(out.config.tiedEmbeddings).toBe(false);
    expect(JSON.parse(await sink.files.get('config.json')!.text()).tie_word_embeddings ?? false).toBe(false);
    for (const [n, values] of replaced) {
      expect(Buffer.from(await out.store.readBytes(n)).equals(Buffer.from(fromFloat32(values, ckpt.dtype))), n).toBe(true);
    }
    for (const n of ckpt.store.tensors.keys()) {
      if (replaced.has(n)) continue;
      expect(Buffer.from(await out.store.readBytes(n)).equals(Buffer.from(await ckpt.store.readBytes(n))), n).toBe(true);
    }
    expect(ckpt.store.has('model.embed_tokens.weight') && out.store.has('model.embed_tokens.weight')).toBe(true);
    expect(sink.files.has('gradprune_recovery.json')).toBe(true);
  });
});

describe('exportReplacedCheckpointTo, bad input', () => {
  it('refuses a tensor the checkpoint does not have, naming it', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');
    await expect(exportReplacedCheckpointTo(new MemorySink(), ckpt, { replaced: new Map([['model.layers.99.mlp.up_proj.weight', new Float32Array(1)]]) })).rejects.toThrow(/model\.layers\.99\.mlp\.up_proj\.weight is not a tensor of this checkpoint/);
  });
});
