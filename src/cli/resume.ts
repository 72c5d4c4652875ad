// `--checkpoint-every N` and `--resume` of the training commands (score, finetune): the run's snapshot
// (nn/run-snapshot.ts) lives beside --out as `<out>.resume.safetensors` (scores.json → scores.resume.safetensors,
// recovered/ → recovered.resume.safetensors), rewritten under a temporary name and renamed every N finished steps
// and when the run stops, so a Ctrl-C, a crash or a lost device leaves the last complete one. `--resume` continues
// from it (the same model, data and settings; --steps and --lr may change, e.g. a lower lr after a NaN); it is
// removed once the output is complete.

import { openAsBlob } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { checkOutput, writeFilesReplacing } from '../export/node-output';
import { GradPruneError } from '../errors';
import type { RunCheckpoint } from '../nn/lora-run';
import { decodeRunSnapshot, runSnapshotParts, type RunSnapshot } from '../nn/run-snapshot';
import { flag, intOption, type CliIO, type OptionSpec, type OptionValues } from './command';

export const DEFAULT_CHECKPOINT_EVERY = 10;

export const RESUME_OPTIONS: Record<string, OptionSpec> = {
  'checkpoint-every': {
    type: 'string',
    valueName: 'N',
    description: `save the run's state beside --out (<out>.resume.safetensors) every N steps, to continue it with --resume (default ${DEFAULT_CHECKPOINT_EVERY}; 0: never)`,
  },
  resume: { type: 'boolean', description: 'continue the interrupted run from <out>.resume.safetensors (same model, data and settings; --steps and --lr may change)' },
};

/** `scores.json` → `scores.resume.safetensors`; `recovered/` → `recovered.resume.safetensors`. */
export const resumeFileFor = (out: string): string => `${out.replace(/[\\/]+$/, '').replace(/\.json$/i, '')}.resume.safetensors`;

/** A training command's snapshot: what to continue from, the run's checkpoint hook, and its removal at the end. */
export interface CliResume {
  file: string;
  resumeFrom?: RunSnapshot;
  checkpoint?: RunCheckpoint;
  /** The output is complete: the snapshot is no longer needed. */
  remove(): Promise<void>;
  /** The output of `done` of `planned` steps is written: removed when the run is complete, else kept (and said so). */
  finished(done: number, planned: number): Promise<void>;
}

const exists = (file: string) => stat(file).then(() => true, () => false);

/**
 * The snapshot file of a command writing `out`, checked before any work: never an input or inside a model folder;
 * with --resume it must exist and be a snapshot (whether it fits the run is checked as the run starts); without,
 * an existing one (an interrupted run's) is refused unless --overwrite.
 */
export async function resumeFor(
  out: string,
  options: OptionValues,
  checks: { sourceFolders: string[]; inputFiles: string[]; overwrite: boolean },
  io: CliIO,
): Promise<CliResume> {
  const given = resumeFileFor(out);
  const everySteps = intOption(options, 'checkpoint-every', DEFAULT_CHECKPOINT_EVERY, { min: 0 });
  const resume = flag(options, 'resume');
  const file = await checkOutput(given, 'file', { ...checks, overwrite: true, option: '--out' });
  let resumeFrom: RunSnapshot | undefined;
  if (resume) {
    if (!(await exists(file))) {
      throw new GradPruneError('input', `--resume: there is no snapshot ${given} to continue from.`, {
        subject: 'resume',
        hint: `A run with --out ${out} writes one every --checkpoint-every steps; run without --resume to start afresh.`,
      });
    }
    resumeFrom = await decodeRunSnapshot(await openAsBlob(file), given);
    io.err(`resuming from ${given}: ${resumeFrom.step} step${resumeFrom.step === 1 ? '' : 's'} done`);
  } else if (await exists(file)) {
    if (!checks.overwrite) {
      throw new GradPruneError('input', `${given} holds the state of an interrupted run with --out ${out}.`, {
        subject: 'resume',
        hint: 'Add --resume to continue it, or --overwrite to start afresh (the snapshot is replaced).',
      });
    }
  }
  const checkpoint: RunCheckpoint | undefined = everySteps === 0 ? undefined : {
    everySteps,
    save: (snapshot) => writeFilesReplacing([{ target: file, given, content: () => chunks(runSnapshotParts(snapshot)) }], { overwrite: true }),
    howToResume: (lr) => `by running the same command with --resume --lr ${lr}`,
  };
  const remove = async () => {
    await unlink(file).catch(() => undefined);
  };
  return {
    file,
    resumeFrom,
    checkpoint,
    remove,
    finished: async (done, planned) => {
      if (done >= planned) return remove();
      if (checkpoint) io.err(`the run's state after ${done} of ${planned} steps is kept in ${given}: continue it with --resume --overwrite`);
    },
  };
}

async function* chunks(parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* parts;
}
