// `--precision auto|f32|f16` on the commands that load weights: parsed and checked before any GPU work, shown on
// stderr, recorded in the JSON reports. (What 'auto' becomes on a GPU is tested in the gpu and gpu-f16 tiers.)
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, loraGradFixtureFiles } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';
import { recoverySettingsFrom } from './finetune';
import { scoringSettingsFrom } from './score';

const ARC = path.join(DATASETS, 'arc/arc_easy.jsonl');

describe('--precision', () => {
  it('defaults to auto for score, demo and finetune, and takes f32 or f16', () => {
    expect(scoringSettingsFrom({}).weights).toBe('auto');
    expect(scoringSettingsFrom({ precision: 'f16' }).weights).toBe('f16');
    expect(recoverySettingsFrom({}).weights).toBe('auto');
    expect(recoverySettingsFrom({ precision: 'f32' }).weights).toBe('f32');
  });

  it('rejects anything else with exit code 2, before touching the GPU', async () => {
    const model = fixtureDir('tiny-llama');
    for (const argv of [
      ['score', model, '--data', ARC],
      ['eval', model, '--data', ARC],
      ['generate', model, '--prompt', 'Hi'],
      ['finetune', model, '--data', ARC, '--out', '/nonexistent/out'],
      ['demo'],
    ]) {
      const r = await cli(...argv, '--precision', 'bf16');
      expect(r.code, argv[0]).toBe(2);
      expect(r.stderr.split('\n')[0], argv[0]).toBe('gradprune: --precision must be one of auto, f32, f16 (got "bf16").');
    }
  });

  it('shows f32 on the CPU reference and records it in the JSON report', async () => {
    const { data } = await loraGradFixtureFiles('tiny-llama');
    const r = await cli('eval', fixtureDir('tiny-llama'), '--data', data, '--cpu', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^weights: f32 \(the CPU reference computes in float32\)$/m);
    expect(JSON.parse(r.stdout).weights).toBe('f32');
    const g = await cli('generate', fixtureDir('tiny-llama'), '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--cpu', '--json');
    expect(g.code).toBe(0);
    expect(g.stderr).toMatch(/^weights: f32 \(the CPU reference computes in float32\)$/m);
    expect(JSON.parse(g.stdout).weights).toBe('f32');
  });

  it('refuses f16 on the CPU reference, saying what to do', async () => {
    const r = await cli('generate', fixtureDir('tiny-llama'), '--prompt-ids', '1,2,3', '--cpu', '--precision', 'f16');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      'gradprune: The CPU reference computes in float32 and cannot store weights as f16. Leave the precision at auto (or f32) with the CPU reference, or use the GPU.',
    );
  });
});
