// inspect's report of how the paper's scoring job runs on an adapter, on the seven published shapes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../../gpu/device';
import { normalizeConfig } from '../../model/config';
import { DEFAULT_LORA } from '../../nn/lora';
import { jobFit, type MemoryPlan } from '../../nn/memory';
import { SHARED } from '../../testing/paths';
import { jobFitLine } from './inspect';

const publishedConfig = (file: string) => normalizeConfig(JSON.parse(readFileSync(path.join(SHARED, 'configs', file), 'utf8')));
const llama8b = publishedConfig('llama-3.1-8b.json');
const GiB = 2 ** 30;
const adapter = (maxBufferSize: number, maxStorageBufferBindingSize = maxBufferSize): AdapterSummary => ({
  name: 'test', isSoftware: false, shaderF16: true, timestampQuery: false, subgroups: false,
  maxBufferSize, maxStorageBufferBindingSize, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 10,
});

describe('the scoring job on the seven published shapes (inspect\'s fit report)', () => {
  const job: MemoryPlan = { batchSize: 4, seqLen: 256, lora: DEFAULT_LORA, weights: 'f16', checkpointing: false, training: true };
  const desktop = adapter(4 * GiB, 2 * GiB);
  // f16 weights: 2 bytes × the published parameter count. Up to 1.24 B parameters (2.5 GB) the job stays resident
  // within 16 GB; the 7-8 B models' weights alone take 14.5-16.4 GB, so their layers stream.
  it.each([
    ['llama-3.2-1b.json', 'resident'],
    ['qwen2.5-0.5b.json', 'resident'],
    ['qwen3-0.6b.json', 'resident'],
    ['llama-3.1-8b.json', 'streamed'],
    ['mistral-7b-v0.3.json', 'streamed'],
    ['qwen2.5-7b.json', 'streamed'],
    ['qwen3-8b.json', 'streamed'],
  ])('%s runs %s on a 16 GB GPU', (file, residency) => {
    const fit = jobFit(publishedConfig(file), job, desktop, 16e9);
    expect(fit).toMatchObject({ fits: true, residency, reason: null, limitBytes: 16e9 });
    expect(fit.estimate!.total).toBeLessThanOrEqual(16e9);
    if (residency === 'streamed') expect(fit.estimate!.rereadLayers).toBeGreaterThan(0); // over 4 GiB of host memory: some layers come from the files
    const line = jobFitLine(fit, 'f16');
    expect(line).toMatch(residency === 'streamed' ? /weights streamed layer by layer — .* of host memory \(\d+ layers re-read from the files at each upload\); .* uploaded per step$/ : /weights resident — /);
  });

  it('says why when not even streaming fits', () => {
    const fit = jobFit(llama8b, job, desktop, 1e9);
    expect(fit.fits).toBe(false);
    expect(jobFitLine(fit, 'f16')).toMatch(/does not fit — This job needs .* even with the weights streamed layer by layer/);
  });
});
