// Resumable runs: a scoring run and a recovery run interrupted after k steps (a stop, a cancel) and continued from
// the snapshot they saved (through its file form) give what the straight run gives, bit for bit: the resumed run
// uploads the very f32 adapters and AdamW moments, replays the same batches and sums IGIA onto the same
// accumulators, and the kernels run in the same order on the same device, so nothing can differ by even a rounding.
// A step that diverges names its module and the last good checkpoint, and that checkpoint continues with a lower lr.
import { describe, expect, it } from 'vitest';
import type { TokenizedExample } from '../data/types';
import { GradPruneError } from '../errors';
import { runRecovery, type RecoveryResult } from '../eval/recovery';
import { runScoring, type ScoringResult } from '../gradprune/pipeline';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { testGpu } from '../testing/gpu';
import { fixtureDir } from '../testing/paths';
import { openReference } from './reference/fixture';
import type { ScoringSettings } from './run-settings';
import { decodeRunSnapshot, encodeRunSnapshot, type RunSnapshot } from './run-snapshot';
import { TrainingDiverged } from './trainer';

const gpu = await testGpu();
const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');

/** The fixture's recorded scoring rows as tokenized examples (so the run batches and shuffles them itself). */
async function fixtureExamples(): Promise<{ examples: TokenizedExample[]; T: number }> {
  const ref = await openReference(fixtureDir('tiny-llama'), 'gradprune.safetensors');
  const [S, B, T] = ref.info('input_ids').shape;
  const ids = await ref.readI32('input_ids');
  const mask = await ref.readI32('loss_mask');
  const examples = Array.from({ length: S * B }, (_, r) => ({
    line: r + 1,
    inputIds: Array.from(ids.subarray(r * T, (r + 1) * T)),
    lossMask: Array.from(mask.subarray(r * T, (r + 1) * T)),
    promptLength: 0,
    truncated: false,
  }));
  return { examples, T };
}

const { examples, T } = await fixtureExamples();
const data = { kind: 'examples' as const, examples, padTokenId: 0 };
const settings: Partial<ScoringSettings> = { steps: 6, batchSize: 2, seqLen: T, lr: 1e-3, warmupSteps: 2, seed: 3, weights: 'f32' };

/** Every snapshot goes through its file form, as the CLI and the studio keep it. */
const throughFile = async (s: RunSnapshot) => decodeRunSnapshot(new Uint8Array(await encodeRunSnapshot(s).arrayBuffer()), 'run.resume.safetensors');

function expectSameScoring(resumed: ScoringResult, straight: ScoringResult): void {
  for (const key of ['steps', 'losses', 'lrs', 'gradNorms', 'tokens', 'targetTokens', 'layerScores', 'layerScoresCode', 'moduleScores', 'history', 'kendall', 'settings'] as const) {
    expect(resumed[key], key).toEqual(straight[key]);
  }
  expect([...resumed.igia.factors.keys()]).toEqual([...straight.igia.factors.keys()]);
  for (const [name, values] of straight.igia.factors) expect(resumed.igia.factors.get(name), name).toEqual(values);
}

describe('a resumed run equals the straight run', () => {
  let straight: ScoringResult;
  const saved: RunSnapshot[] = [];

  it('scoring: stopped after 3 steps (snapshots after 2 and at the stop), continued for the other 3', async () => {
    straight = await runScoring(gpu, ckpt, data, settings);
    const stopped = await runScoring(gpu, ckpt, data, settings, {
      checkpoint: { everySteps: 2, save: async (s) => void saved.push(await throughFile(s)) },
      beforeStep: async (s) => s < 3,
    });
    expect(stopped.steps).toBe(3);
    expect(saved.map((s) => s.step)).toEqual([2, 3]);
    expect(saved[1].curves.losses).toEqual(straight.losses.slice(0, 3));
    const resumed = await runScoring(gpu, ckpt, data, settings, { resumeFrom: saved[1] });
    expectSameScoring(resumed, straight);
  });

  it('scoring: a snapshot of another run is refused, naming what differs', async () => {
    const refused = (given: Partial<ScoringSettings>, snapshot = saved[0]) =>
      runScoring(gpu, ckpt, data, { ...settings, ...given }, { resumeFrom: snapshot }).then(() => null, (e: unknown) => e as GradPruneError);
    const seed = await refused({ seed: 4 });
    expect(seed?.code).toBe('input');
    expect(seed?.message).toMatch(/^run\.resume\.safetensors cannot be continued here: its setting seed was 3, this run's is 4\. Resume with seed 3/);
    expect((await refused({ steps: 1 }))?.message).toMatch(/it has done 2 steps, more than this run's 1/);
    const otherData = await runScoring(gpu, ckpt, { ...data, examples: examples.slice(1) }, settings, { resumeFrom: saved[0] }).catch((e: unknown) => e as Error);
    expect((otherData as Error).message).toMatch(/saved by a run on other data \(the tokenized examples differ\)/);
    const qwen = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')), 'tiny-qwen2');
    const otherModel = await runScoring(gpu, qwen, data, settings, { resumeFrom: saved[0] }).catch((e: unknown) => e as Error);
    expect((otherModel as Error).message).toMatch(/saved by a run on another model \(the model fingerprint differs\)/);
    const recovery = await runRecovery(gpu, ckpt, data, { steps: 4, batchSize: 2, seqLen: T, heldOut: 0 }, { resumeFrom: saved[0] }).catch((e: unknown) => e as Error);
    expect((recovery as Error).message).toMatch(/it is a scoring run's snapshot, not a recovery run's/);
  });

  it('scoring: a diverging step names its module and the last checkpoint, which continues with a lower lr', async () => {
    // From the snapshot after 2 steps at lr 1e38: AdamW moves every B by ~lr at step 2, and step 3's forward overflows.
    const diverged = await runScoring(gpu, ckpt, data, { ...settings, lr: 1e38 }, {
      resumeFrom: saved[0],
      checkpoint: { everySteps: 100, save: async () => undefined, howToResume: (lr) => `with --resume --lr ${lr}` },
    }).catch((e: unknown) => e);
    expect(diverged).toBeInstanceOf(TrainingDiverged);
    const e = diverged as TrainingDiverged;
    expect(e.code).toBe('numeric');
    expect(e.step).toBe(3);
    expect(e.module).toMatch(/^model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj$/);
    expect(e.message).toContain(`Training diverged at step 3: `);
    expect(e.message).toContain(e.module!);
    expect(e.hint).toBe('The last checkpoint is from after step 2: resume from it with --resume --lr 1e+37.');
    // The same checkpoint at the run's own lr continues as if nothing had happened.
    expectSameScoring(await runScoring(gpu, ckpt, data, settings, { resumeFrom: saved[0] }), straight);
  });

  it('recovery: cancelled after 2 steps (the snapshot saved on the way out), continued for the other 3', async () => {
    const given = { steps: 5, batchSize: 2, seqLen: T, lr: 1e-3, heldOut: 4, seed: 1, weights: 'f32' as const };
    const straightRecovery = await runRecovery(gpu, ckpt, data, given);
    const controller = new AbortController();
    let snapshot: RunSnapshot | null = null;
    const cancelled = await runRecovery(gpu, ckpt, data, given, {
      progressIntervalMs: 0,
      signal: controller.signal,
      onStep: (p) => p.step === 1 && controller.abort(),
      checkpoint: { everySteps: 10, save: async (s) => void (snapshot = await throughFile(s)) },
    }).catch((e: unknown) => e as GradPruneError);
    expect((cancelled as GradPruneError).code).toBe('cancelled');
    expect(snapshot!.step).toBe(2);
    expect(snapshot!.kind).toBe('recovery');
    const evals: string[] = [];
    const resumed: RecoveryResult = await runRecovery(gpu, ckpt, data, given, { resumeFrom: snapshot!, onEval: (phase) => evals.push(phase) });
    expect(new Set(evals)).toEqual(new Set(['after'])); // "before" is the snapshot's, not measured on the trained model
    for (const key of ['steps', 'losses', 'lrs', 'gradNorms', 'tokens', 'targetTokens', 'before', 'after', 'trainExamples', 'heldOutExamples'] as const) {
      expect(resumed[key], key).toEqual(straightRecovery[key]);
    }
    expect(resumed.adapters).toEqual(straightRecovery.adapters);
  });
});
