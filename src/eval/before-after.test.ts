// The before / after table: parameter counts and weight bytes against the fixtures' own safetensors headers, ratios
// against the first row, and the text rendering.
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { numel } from '../model/safetensors';
import { fixtureDir } from '../testing/paths';
import { comparisonRows, formatComparisonTable, parameterCount } from './before-after';

const open = async (name: string) => openCheckpoint(await openFolder(fixtureDir(name)), name);
/** Σ numel over every tensor of the file, as Hugging Face's num_parameters() counts a checkpoint. */
const fileParameters = (ckpt: Awaited<ReturnType<typeof open>>) => [...ckpt.store.tensors.values()].reduce((n, t) => n + numel(t.shape), 0);

describe('comparisonRows', () => {
  it('counts parameters as the checkpoint holds them (a tied head once) and weight bytes in the stored dtype', async () => {
    for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-qwen3']) {
      const ckpt = await open(name);
      expect(parameterCount(ckpt.config), name).toBe(fileParameters(ckpt));
    }
    const qwen = await open('tiny-qwen2'); // BF16: 2 bytes a parameter
    const [row] = comparisonRows([{ label: 'dense', config: qwen.config, dtype: qwen.dtype }]);
    expect(row.weightBytes).toBe(2 * fileParameters(qwen));
  });

  it('gives ratios against the first row and renders one line per model', async () => {
    const dense = await open('tiny-llama');
    const pruned = { ...dense.config, numLayers: 3 };
    const cost = (ms: number) => ({ msPerToken: ms, passMs: [ms], tokensPerPass: 1, weightBytes: 0 });
    const loss = (l: number) => ({ loss: l, perplexity: Math.exp(l), tokens: 10, rows: 2 });
    const rows = comparisonRows([
      { label: 'dense', config: dense.config, dtype: 'F32', cost: cost(2), heldOut: loss(2), accuracy: { acc: 0.5, accNorm: 0.25, items: 4 } },
      { label: 'pruned', config: pruned, dtype: 'F32', cost: cost(1), heldOut: loss(3) },
    ]);
    // Per tiny-llama layer: 2 norms of 64, q/o 64×64, k/v 32×64, gate/up/down 176×64.
    const layer = 2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 176 * 64;
    expect(rows[0].parameters - rows[1].parameters).toBe(3 * layer);
    expect(rows[1].parameterRatio).toBeCloseTo(rows[1].parameters / rows[0].parameters, 12);
    expect(rows[1].speedup).toBe(2);
    expect(rows[1]).toMatchObject({ label: 'pruned', layers: 3, heldOutLoss: 3, acc: null, accNorm: null });
    const text = formatComparisonTable(rows).split('\n');
    expect(text).toHaveLength(3);
    expect(text[0]).toMatch(/^model\s+layers\s+parameters\s+weights\s+ms\/token\s+held-out loss\s+ppl\s+acc\s+acc_norm$/);
    expect(text[1]).toMatch(/^dense\s+6\s+343 k \(100%\)\s+1\.31 MiB\s+2\.000\s+2\.0000\s+7\.39\s+50\.0%\s+25\.0%$/);
    expect(text[2]).toMatch(/^pruned\s+3\s+.*\(2\.00×\)\s+3\.0000\s+20\.09\s+–\s+–$/);
  });
});
