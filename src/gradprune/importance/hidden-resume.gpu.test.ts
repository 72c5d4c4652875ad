// A scoring run that gathers hidden-state statistics, stopped and continued from its snapshot (through the file
// form), gives the straight run's statistics exactly; a snapshot without them cannot continue a run that gathers them.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../../errors';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { fixtureRunBatches, openReference } from '../../nn/reference/fixture';
import type { ScoringSettings } from '../../nn/run-settings';
import { decodeRunSnapshot, encodeRunSnapshot, type RunSnapshot } from '../../nn/run-snapshot';
import { testGpu } from '../../testing/gpu';
import { fixtureDir } from '../../testing/paths';
import { runScoring, type ScoringData } from '../pipeline';
import { hiddenStatePairsFor, importanceMethod } from './index';

const gpu = await testGpu();
const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');
const { B, T, batch } = await fixtureRunBatches(await openReference(fixtureDir('tiny-llama'), 'gradprune.safetensors'));
const data: ScoringData = { kind: 'batches', batch, fingerprint: 'tiny-llama gradprune batches' };
const settings: Partial<ScoringSettings> = { steps: 4, batchSize: B, seqLen: T, lr: 1e-3, warmupSteps: 1, seed: 3, weights: 'f32' };
const hiddenStates = hiddenStatePairsFor(['bi', 'angular'].map(importanceMethod), ckpt.config.numLayers, 2);
const throughFile = async (s: RunSnapshot) => decodeRunSnapshot(new Uint8Array(await encodeRunSnapshot(s).arrayBuffer()), 'run.resume.safetensors');

describe('hidden-state statistics across a resumed scoring run', () => {
  it('stopped after 2 of 4 steps and continued: the straight run\'s statistics', async () => {
    const straight = await runScoring(gpu, ckpt, data, settings, { hiddenStates });
    let snapshot: RunSnapshot | null = null;
    const stopped = await runScoring(gpu, ckpt, data, settings, {
      hiddenStates,
      checkpoint: { everySteps: 100, save: async (s) => void (snapshot = await throughFile(s)) },
      beforeStep: async (s) => s < 2,
    });
    expect(stopped.hiddenStates?.passes).toBe(2);
    const resumed = await runScoring(gpu, ckpt, data, settings, { hiddenStates, resumeFrom: snapshot! });
    expect(resumed.hiddenStates?.passes).toBe(4);
    expect(resumed.hiddenStates?.tokens).toBe(straight.hiddenStates?.tokens);
    expect(resumed.hiddenStates?.mean).toEqual(straight.hiddenStates?.mean);
    // The later steps (B ≠ 0) moved the statistics: the first two steps alone differ.
    expect(stopped.hiddenStates?.mean).not.toEqual(straight.hiddenStates?.mean);

    const plain = await runScoring(gpu, ckpt, data, settings, {
      checkpoint: { everySteps: 100, save: async (s) => void (snapshot = await throughFile(s)) },
      beforeStep: async (s) => s < 2,
    });
    expect(plain.hiddenStates).toBeUndefined();
    const err = await runScoring(gpu, ckpt, data, settings, { hiddenStates, resumeFrom: snapshot! }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as Error).message).toMatch(/snapshot has no hidden-state statistics/);
  });
});
