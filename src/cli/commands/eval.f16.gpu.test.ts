// `gradprune eval` and `gradprune score` on the GPU with the default --precision auto, on an adapter with
// shader-f16 (gpu-f16 tier: Dawn on lavapipe; skipped, with the reason, without it): the precision line on stderr,
// f16 in the JSON report and in scores.json, and the fixture loss of tiny-mistral (stored F16, so f16 storage is
// exact) within relative 1e-4 (the f32 tier's CPU check: 1e-5).
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../gpu/device';
import { cli, loraGradFixtureFiles } from '../../testing/cli';
import { f16TestGpu } from '../../testing/lavapipe';
import { DATASETS, fixtureDir } from '../../testing/paths';

let gpu: Gpu;
let skip: string | null = null;
beforeAll(async () => {
  ({ gpu, skip } = await f16TestGpu());
});
afterAll(() => gpu?.device.destroy());

describe('the CLI with --precision auto on an adapter with shader-f16', () => {
  it('eval: says f16, reports it, and reproduces the loss of lora_grad.safetensors through --lora', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const { data, adapter, loss } = await loraGradFixtureFiles('tiny-mistral');
    const r = await cli('eval', fixtureDir('tiny-mistral'), '--data', data, '--lora', adapter, '--json');
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^weights: f16 \(adapter has shader-f16\)$/m);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ engine: 'gpu', weights: 'f16', examples: 3 });
    expect(Math.abs(report.loss - loss) / loss).toBeLessThanOrEqual(1e-4);
    // --precision f32 overrides: the same loss, stored in f32.
    const f32 = await cli('eval', fixtureDir('tiny-mistral'), '--data', data, '--lora', adapter, '--json', '--precision', 'f32');
    expect(f32.stderr).toMatch(/^weights: f32 \(chosen; adapter has shader-f16\)$/m);
    expect(JSON.parse(f32.stdout).weights).toBe('f32');
    expect(Math.abs(JSON.parse(f32.stdout).loss - loss) / loss).toBeLessThanOrEqual(1e-5);
  });

  it('score: says f16 at the start and records it in scores.json', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-f16-'));
    const lines = (await readFile(path.join(DATASETS, 'arc/arc_easy.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, 4);
    const dataFile = path.join(tmp, 'arc4.jsonl');
    await writeFile(dataFile, lines.join('\n') + '\n');
    const out = path.join(tmp, 'scores.json');
    const r = await cli('score', fixtureDir('tiny-mistral'), '--data', dataFile, '--steps', '2', '--batch', '2', '--seq', '32', '--out', out);
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^weights: f16 \(adapter has shader-f16\)$/m);
    const doc = JSON.parse(await readFile(out, 'utf8'));
    expect(doc.settings.weights).toBe('f16');
    expect(doc.losses).toHaveLength(2);
  });
});
