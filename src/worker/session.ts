// One loaded model's session in the worker: the checkpoint and what each step after it made, in pipeline order —
// dataset → scoring → pruned → (check, recovery) — so that a new earlier step drops what it makes stale
// (`dropAfter`). The steps themselves are ./steps/*.ts; each gets a StepContext for its request.
// The pruned (and recovered) checkpoints are views over the dense files, read on demand (./lazy-checkpoint.ts);
// every GPU job gets its weights from one cache (./weights-cache.ts): each checkpoint uploaded once per device and
// precision, shared by Check, generation and Recover, all in the session's precision and GPU memory limit.

import type { Dataset, TokenizedExample, TokenizedSet } from '../data';
import { GradPruneError } from '../errors';
import { formatBytes } from '../format';
import type { ModelMeasurement } from '../eval/before-after';
import type { RecoveryResult } from '../eval/recovery';
import type { Gpu } from '../gpu/device';
import type { PruneRunInfo } from '../gradprune/recipe';
import type { ScoringResult } from '../gradprune/pipeline';
import type { PrunePlan } from '../gradprune/plan';
import type { Checkpoint } from '../model/checkpoint';
import type { WeightsSource } from '../nn/model';
import type { LazyCheckpoint } from './lazy-checkpoint';
import type { DatasetOptions, JobSettings, NewsEvent, ResultBody } from './protocol';
import { RunControl, type RunState } from './run-control';
import type { RunStore } from './run-store';
import { WeightsCache, type WeightsLease } from './weights-cache';

export interface DatasetState {
  file: Blob;
  fileName: string;
  dataset: Dataset;
  set: TokenizedSet;
  train: TokenizedExample[];
  heldOut: TokenizedExample[];
  options: DatasetOptions;
  /** SHA-256 of the file's bytes (32 hex digits): with the model's, what saved runs are kept under. */
  fingerprint: string;
  /** The training split re-tokenized for other row lengths (runs at a seqLen below the dataset's), kept for the next run. */
  trainBySeqLen: Map<number, TokenizedExample[]>;
}

export interface PrunedState {
  plan: PrunePlan;
  /** What the model card and recipe say about the run (as the prune made it). */
  run: PruneRunInfo;
  /** The pruned model as a view over the dense files (merged receivers kept; everything else read on demand). */
  checkpoint: LazyCheckpoint;
}

/** The last Check of the pruned model: its two measurements on `examples` held-out rows, and its lines in the recipe. */
export interface CheckState {
  examples: number;
  dense: ModelMeasurement;
  pruned: ModelMeasurement;
  evaluation: NonNullable<PruneRunInfo['evaluation']>;
}

export interface RecoveryState {
  /** The trained adapters (host values) and their LoRA config. */
  result: RecoveryResult;
  /** The pruned model with the adapter merged in, as a view over the pruned one (merged as it is read). */
  recovered: LazyCheckpoint;
  /** What the page was told (the numbers the model card repeats). */
  event: ResultBody<'recover'>;
}

/** The steps whose results the session keeps, in pipeline order. */
export type SessionStep = 'checkpoint' | 'dataset' | 'scoring' | 'pruned';

/** What a step handler has for its request: the session, the device, and a way to tell the page how it goes. */
export interface StepContext {
  id: number;
  session: Session;
  gpu(): Promise<Gpu>;
  progress(stage: string, fraction?: number): void;
  post(event: NewsEvent): void;
  /** Where a training run keeps its snapshots (OPFS in the browser; nothing in Node). */
  runs: RunStore;
}

const missing = {
  dataset: () => new GradPruneError('input', 'No dataset is loaded yet.', { subject: 'dataset', hint: 'Drop a dataset file in step 2 (or try the demo) first.' }),
  scoring: () => new GradPruneError('input', 'There are no scores yet.', { subject: 'scores', hint: 'Run the scoring in step 3 first.' }),
  pruned: () => new GradPruneError('input', 'There is no pruned model yet.', { subject: 'prune', hint: 'Apply a plan in step 4 first.' }),
};
/** "Uploading the dense weights (312 MiB of 1.2 GiB)": how far an upload is, in bytes. */
export const uploadStage = (label: string, done: number, total: number): string =>
  `Uploading the ${label} weights${total ? ` (${formatBytes(done)} of ${formatBytes(total)})` : ''}`;

const busy = () => new GradPruneError('input', 'A training run (scoring or recovery) is already going.', { subject: 'run', hint: 'Stop it first.' });

/** The session's job settings as a request gives them: 'auto' precision and the adapter's own limit by default. */
export const jobOf = (given: Partial<JobSettings> | undefined): JobSettings => ({ weights: given?.weights ?? 'auto', maxGpuMemory: given?.maxGpuMemory ?? null });

export class Session {
  dataset: DatasetState | null = null;
  scoring: ScoringResult | null = null;
  pruned: PrunedState | null = null;
  check: CheckState | null = null;
  recovery: RecoveryState | null = null;
  private run: RunControl | null = null;

  constructor(
    readonly checkpoint: Checkpoint,
    /** The weights on the GPU (the host's, shared across models it loads; it clears it on a new model). */
    readonly weights: WeightsCache = new WeightsCache(),
    /** model/fingerprint.ts modelFingerprint of the checkpoint (what saved scores and run snapshots are tied to). */
    readonly fingerprint = '',
  ) {}

  /** Forget every result after `step` (a new result of `step` makes them stale), with the pruned models' uploads. */
  dropAfter(step: SessionStep): void {
    const order: SessionStep[] = ['checkpoint', 'dataset', 'scoring', 'pruned'];
    const keep = order.indexOf(step);
    if (keep < 1) this.dataset = null;
    if (keep < 2) this.scoring = null;
    if (keep < 3) {
      this.pruned = null;
      this.weights.evict((c) => c !== this.checkpoint);
    }
    this.check = null;
    this.dropRecovery();
  }

  /** Forget the recovery run and its merged model's upload. */
  dropRecovery(): void {
    const previous = this.recovery?.recovered;
    this.recovery = null;
    if (previous) this.weights.evict((c) => c === previous);
  }

  needDataset(): DatasetState {
    if (!this.dataset) throw missing.dataset();
    return this.dataset;
  }
  needScoring(): ScoringResult {
    if (!this.scoring) throw missing.scoring();
    return this.scoring;
  }
  needPruned(): PrunedState {
    if (!this.pruned) throw missing.pruned();
    return this.pruned;
  }

  /** The one training run (scoring or recovery) at a time: `work` runs under a new control, which ends with it. */
  async training<T>(work: (control: RunControl) => Promise<T>): Promise<T> {
    this.notTraining();
    const control = new RunControl();
    this.run = control;
    try {
      return await work(control);
    } finally {
      this.run = null;
    }
  }

  /** Refuse a step that would change what a running training run uses. */
  notTraining(): void {
    if (this.run) throw busy();
  }

  /** After a pause or stop of the running run: the steps it holds or ends with (see RunControl.holdsAfter). */
  get holdsAfter(): number | null {
    return this.run?.holdsAfter ?? null;
  }

  /** Pause, resume or stop the running training run; its state after. */
  control(action: 'pause' | 'resume' | 'stop'): RunState {
    this.run?.act(action);
    return this.run?.state ?? 'idle';
  }

  /**
   * Cached weights of `ckpt` for the jobs of one step, in the session's precision and limit; `release()` when the
   * step's jobs are done (the weights stay cached for the next step).
   */
  weightsFor(ctx: StepContext, gpu: Gpu, ckpt: Checkpoint, label: string, job: JobSettings): { source: WeightsSource; release(): void } {
    const leases: WeightsLease[] = [];
    const source: WeightsSource = async (storage, plan) => {
      const lease = await this.weights.acquire(gpu, ckpt, storage, plan, {
        maxGpuMemory: job.maxGpuMemory,
        onProgress: (done, total) => ctx.progress(uploadStage(label, done, total), total ? done / total : undefined),
      });
      leases.push(lease);
      return lease.weights;
    };
    return { source, release: () => leases.splice(0).forEach((l) => l.release()) };
  }
}
