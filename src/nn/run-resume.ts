// The device side of run snapshots (./run-snapshot.ts) for runLoraRun (./lora-run.ts): a run's identity, its
// adapters and AdamW moments read back from and written onto the GPU, and the checkpointing of a run (when to
// save, where the last good one is when a step diverges).

import type { TokenizedExample } from '../data/types';
import { readback, upload } from '../gpu/tensor';
import { GradPruneError } from '../errors';
import type { GpuModel } from './model';
import type { LoraRunSettings } from './run-settings';
import { dataFingerprint, type AdapterSnapshot, type RunIdentity, type RunKind, type RunSnapshot, type RunWorkState } from './run-snapshot';
import type { LoraSteps } from './step-loop';
import type { TrainingDiverged } from './trainer';

/** Where a run saves its snapshots. */
export interface RunCheckpoint {
  /** Save after every `everySteps` finished steps, and when the run stops or is cancelled after a step not yet saved. */
  everySteps: number;
  /** Awaited between steps (never mid-step); the snapshot's arrays are the caller's to keep. */
  save(snapshot: RunSnapshot): Promise<void>;
  /** How a person resumes with a lower learning rate, for a diverged run's hint, e.g. "run the same command with `--resume --lr 1e-5`". */
  howToResume?: (lowerLr: number) => string;
}

/** The run's identity as a snapshot records it: settings with the weights as stored on this device. */
export async function runIdentity(
  kind: RunKind,
  modelFingerprint: string,
  data: { examples: readonly TokenizedExample[]; padTokenId: number } | { fingerprint: string },
  settings: LoraRunSettings,
): Promise<RunIdentity> {
  const fingerprint = 'fingerprint' in data ? data.fingerprint : await dataFingerprint(data.examples, data.padTokenId);
  return { kind, modelFingerprint, dataFingerprint: fingerprint, settings: { ...settings } };
}

/** Every adapter's values and AdamW moments, read back (copies). */
export async function captureAdapters(model: GpuModel): Promise<AdapterSnapshot[]> {
  const { device } = model.gpu;
  const out: AdapterSnapshot[] = [];
  for (const a of model.adapters) {
    const [A, B, mA, vA, mB, vB] = await Promise.all([a.A, a.B, a.mA, a.vA, a.mB, a.vB].map((t) => readback(device, t)));
    out.push({ name: a.name, inFeatures: a.inFeatures, outFeatures: a.outFeatures, A, B, mA, vA, mB, vB });
  }
  return out;
}

/** Write a snapshot's adapters and moments onto the model's; every adapter must be there, of its size. */
export function restoreAdapters(model: GpuModel, adapters: readonly AdapterSnapshot[], source: string): void {
  const byName = new Map(adapters.map((a) => [a.name, a]));
  for (const a of model.adapters) {
    const saved = byName.get(a.name);
    if (!saved || saved.inFeatures !== a.inFeatures || saved.outFeatures !== a.outFeatures) {
      throw new GradPruneError('input', `${source} has ${saved ? `a ${saved.outFeatures}×${saved.inFeatures}` : 'no'} adapter for ${a.name} (${a.outFeatures}×${a.inFeatures}).`, {
        subject: a.name,
        hint: 'The snapshot does not belong to this model: start afresh.',
      });
    }
    for (const part of ['A', 'B', 'mA', 'vA', 'mB', 'vB'] as const) upload(model.gpu.device, a[part], saved[part]);
  }
  if (byName.size !== model.adapters.length) {
    const extra = adapters.find((s) => !model.adapters.some((a) => a.name === s.name));
    throw new GradPruneError('input', `${source} has an adapter for ${extra?.name}, which this run does not train.`, { subject: extra?.name, hint: 'The snapshot does not belong to this run: start afresh.' });
  }
}

/** What the run's own work adds to a snapshot, and the adapters of its model. */
export interface SnapshotSource {
  model: GpuModel;
  work: () => Promise<RunWorkState>;
}

/** When a run saves, what it saved last, and what a diverged run's hint says about it. */
export class RunCheckpointer {
  /** Steps done at the last snapshot saved (or resumed from): the last good checkpoint. */
  private lastSaved: number;
  /** The curves after the latest finished step. */
  private latest: LoraSteps | null = null;

  constructor(
    private readonly identity: RunIdentity | null,
    private readonly checkpoint: RunCheckpoint | undefined,
    resumedAt: number,
    private readonly source: SnapshotSource,
  ) {
    if (checkpoint && !(Number.isInteger(checkpoint.everySteps) && checkpoint.everySteps >= 1)) {
      throw new Error(`A checkpoint every ${checkpoint.everySteps} steps: it must be a whole number ≥ 1.`);
    }
    this.lastSaved = resumedAt;
  }

  /** After each finished step: save when it is a multiple of everySteps. */
  async afterStep(curves: LoraSteps): Promise<void> {
    this.latest = curves;
    if (this.checkpoint && curves.losses.length % this.checkpoint.everySteps === 0) await this.save();
  }

  /** The run stopped (or was cancelled) between steps: save what was trained since the last snapshot. */
  async stopped(): Promise<void> {
    if (this.checkpoint && this.latest && this.latest.losses.length > this.lastSaved) await this.save();
  }

  /** A diverged step's error, its hint naming the last good checkpoint and how to resume from it. */
  diverged(e: TrainingDiverged, settings: LoraRunSettings): TrainingDiverged {
    if (!this.identity || this.lastSaved === 0) return e;
    const lower = Number((settings.lr / 10).toPrecision(3));
    const how = this.checkpoint?.howToResume?.(lower) ?? `with a learning rate below ${settings.lr}, e.g. ${lower}`;
    return e.withHint(`The last checkpoint is from after step ${this.lastSaved}: resume from it ${how}.`);
  }

  private async save(): Promise<void> {
    const curves = this.latest!;
    const step = curves.losses.length;
    const snapshot: RunSnapshot = {
      ...this.identity!,
      step,
      adapters: await captureAdapters(this.source.model),
      curves: { ...curves, losses: [...curves.losses], lrs: [...curves.lrs], gradNorms: [...curves.gradNorms] },
      work: await this.source.work(),
    };
    await this.checkpoint!.save(snapshot);
    this.lastSaved = step;
  }
}
