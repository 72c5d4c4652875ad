// What every writing command (score, prune, finetune, demo) shares about its outputs: the --overwrite option, the
// checks before any work (./export/node-output.ts checkOutput: never into a model folder, never over an input,
// never over an existing output without --overwrite, a folder that takes new files), and, for the real process,
// removing half-written temporary outputs when the person presses Ctrl-C.

import { checkOutput, removePendingTemporaries, type OutputChecks, type OutputKind } from '../export/node-output';
import { settleGpuWork } from '../gpu/device';
import { flag, type OptionSpec, type OptionValues } from './command';

export const OVERWRITE_OPTION: OptionSpec = {
  type: 'boolean',
  description: 'replace an existing output (the old one is removed only once the new one is complete)',
};

export const overwriteOption = (options: OptionValues): boolean => flag(options, 'overwrite');

export interface PlannedOutput {
  path: string;
  kind: OutputKind;
  /** For a file output given as a folder: the file name to suggest. */
  fileName?: string;
}

/** Check every output of a command before it starts; returns their resolved paths in the same order. */
export async function checkOutputs(outputs: PlannedOutput[], checks: OutputChecks): Promise<string[]> {
  const resolved: string[] = [];
  for (const o of outputs) resolved.push(await checkOutput(o.path, o.kind, { ...checks, fileName: o.fileName }));
  return resolved;
}

let installed = false;

/** What a first Ctrl-C asks of the running command instead of exiting (a training run: stop after this step). */
let stopHandler: (() => void) | null = null;

/**
 * While a command can stop gracefully (a training loop that then writes its result with the steps done), the first
 * Ctrl-C calls `onStop` instead of exiting; a second one exits as usual. Returns the function that ends this.
 */
export function stopOnInterrupt(onStop: () => void): () => void {
  stopHandler = onStop;
  return () => {
    if (stopHandler === onStop) stopHandler = null;
  };
}

/** Ask the running command to stop (what the first Ctrl-C does); false when none can. */
export function requestStop(): boolean {
  const handler = stopHandler;
  stopHandler = null;
  handler?.();
  return handler !== null;
}

/**
 * On SIGINT / SIGTERM, remove the temporary outputs not yet renamed into place, let the GPU's submitted work finish,
 * then exit as the signal would (130 / 143): a stopped run leaves the previous outputs as they were and nothing
 * half-written beside them. A command that can stop gracefully (stopOnInterrupt) gets the first SIGINT instead.
 */
export function removeTemporariesOnInterrupt(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      if (signal === 'SIGINT' && requestStop()) return;
      removePendingTemporaries();
      void settleGpuWork().finally(() => process.exit(code));
    });
  }
}
