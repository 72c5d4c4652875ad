// The shape of a CLI command and the argument helpers every command shares. A command lives in its own file
// under ./commands/ and is listed once in ./commands/index.ts; main.ts does parsing, help and error reporting.

import { GradPruneError } from '../errors';
import { parseByteSize } from '../byte-size';
import { WEIGHT_PRECISIONS, type WeightPrecision } from '../nn/precision';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help, e.g. "N" for `--steps N`. */
  valueName?: string;
  description: string;
}

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandArgs {
  /** Positionals by their spec name (missing optional ones are undefined). */
  positionals: Record<string, string | undefined>;
  options: OptionValues;
}

/** Where a command writes: stdout for results (so `--json` pipes cleanly), stderr for progress and notes. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** A paragraph for `gradprune <name> --help`. */
  description?: string;
  positionals: PositionalSpec[];
  options: Record<string, OptionSpec>;
  /** Returns the process exit code (0 on success). Throw GradPruneError for anything a person can fix. */
  run(args: CommandArgs, io: CliIO): Promise<number>;
}

/** A bad command line: main prints it with the usage line and exits with code 2. */
export const usageError = (message: string, subject?: string): GradPruneError => new GradPruneError('input', message, { subject });

/** `--name N` as an integer within [min, max]; `fallback` when the option is absent. */
export function intOption(options: OptionValues, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = options[name];
  if (raw === undefined) return fallback;
  const v = typeof raw === 'string' && /^[-+]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(v)) throw usageError(`--${name} must be a whole number (got "${String(raw)}").`, name);
  checkRange(name, v, range);
  return v;
}

/** `--name X` as a finite number within [min, max]; `fallback` when the option is absent. */
export function numberOption(options: OptionValues, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = options[name];
  if (raw === undefined) return fallback;
  const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(v)) throw usageError(`--${name} must be a number (got "${String(raw)}").`, name);
  checkRange(name, v, range);
  return v;
}

/** `--name value` as a string, one of `choices` when given; `fallback` when absent. */
export function stringOption<T extends string>(options: OptionValues, name: string, fallback: T, choices?: readonly T[]): T {
  const raw = options[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string') throw usageError(`--${name} needs a value.`, name);
  if (choices && !choices.includes(raw as T)) throw usageError(`--${name} must be one of ${choices.join(', ')} (got "${raw}").`, name);
  return raw as T;
}

export const flag = (options: OptionValues, name: string): boolean => options[name] === true;

/** `--precision auto|f32|f16`, shared by every command that loads weights onto the GPU. */
export const PRECISION_OPTION: OptionSpec = {
  type: 'string',
  valueName: 'P',
  description: 'weight storage on the GPU: auto (f16 where the adapter has shader-f16, else f32) | f32 | f16 (default auto)',
};

export const precisionOption = (options: OptionValues): WeightPrecision => stringOption(options, 'precision', 'auto', WEIGHT_PRECISIONS);

/** `--max-gpu-memory SIZE`, shared by every command that loads a model onto the GPU. */
export const MAX_GPU_MEMORY_OPTION: OptionSpec = {
  type: 'string',
  valueName: 'SIZE',
  description:
    'GPU memory the job may use, weights included, e.g. 512MiB, 14GiB, 16GB or bytes (default: what the adapter allows); ' +
    'a model that does not fit streams its layers from host memory',
};

/** Bytes of `--max-gpu-memory`, or null when not given. */
export function maxGpuMemoryOption(options: OptionValues): number | null {
  const raw = options['max-gpu-memory'];
  if (raw === undefined) return null;
  if (typeof raw !== 'string') throw usageError('--max-gpu-memory needs a size.', 'max-gpu-memory');
  return parseByteSize(raw, '--max-gpu-memory');
}

function checkRange(name: string, v: number, { min, max }: { min?: number; max?: number }): void {
  if (min !== undefined && v < min) throw usageError(`--${name} must be at least ${min} (got ${v}).`, name);
  if (max !== undefined && v > max) throw usageError(`--${name} must be at most ${max} (got ${v}).`, name);
}
