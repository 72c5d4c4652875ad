// The corpus's one case that needs a GPU: weights holding NaN / Inf are found when they are read for the upload
// and named (tensor, value, where), instead of surfacing as a loss that diverges at step 0 and blaming the lr.
import { copyFile, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFolder } from '../model/node-files';
import { TensorStore, encodeSafetensors } from '../model/safetensors';
import { fixtureDir } from '../testing/paths';
import type { CliIO } from './command';
import { main } from './main';

/** tiny-llama with one element of one tensor replaced by `value`. */
async function damagedCopy(tensor: string, index: number, value: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-nan-'));
  const src = fixtureDir('tiny-llama');
  for (const n of await readdir(src)) if (n.endsWith('.json')) await copyFile(path.join(src, n), path.join(dir, n));
  const store = await TensorStore.open(await openFolder(src));
  const tensors = await Promise.all(
    [...store.tensors.values()].map(async (t) => {
      const data = (await store.readBytes(t.name)).slice();
      if (t.name === tensor) new DataView(data.buffer).setFloat32(index * 4, value, true);
      return { name: t.name, dtype: t.dtype, shape: t.shape, data };
    }),
  );
  await writeFile(path.join(dir, 'model.safetensors'), new Uint8Array(await new Blob(encodeSafetensors(tensors)).arrayBuffer()));
  return dir;
}

describe('NaN / Inf weights through the CLI', () => {
  it('eval stops at the upload and names the tensor, the value and its row and column', async () => {
    const model = await damagedCopy('model.layers.4.self_attn.v_proj.weight', 64 + 10, NaN);
    const data = path.join(model, 'rows.jsonl');
    await writeFile(data, '{"prompt": "Once upon a time", "completion": " there was a cat."}\n'.repeat(4));
    let stderr = '';
    const io: CliIO = { out: () => undefined, err: (t) => void (stderr += `${t}\n`) };
    const code = await main(['eval', model, '--data', data], io);
    expect(stderr).not.toMatch(/internal error|learning rate/);
    expect(stderr).toMatch(/gradprune: Tensor "model\.layers\.4\.self_attn\.v_proj\.weight" in model\.safetensors holds NaN at row 1, column 10 \[shape 32, 64\]\./);
    expect(code).toBe(1);
  });
});
