// A LoRA run's state between two steps, enough to continue it exactly (scoring and recovery alike): the steps done,
// every adapter's values and AdamW moments, the curves so far, the work's own state (IGIA's accumulators and
// gradient factors; recovery's evaluation before training) and the identity it must match to continue (model,
// tokenized data, settings). Data order is not stored: the batch iterator is deterministic from the seed, so a
// resumed run skips the batches already trained on (data/batch.ts skip). Plain data and pure code (no GPU):
// lora-run.ts captures and restores it on the device, the CLI and the studio store it.
//
// On disk one safetensors file, F32 tensors
//   adapter.<module>.lora_A / adam_m_A / adam_v_A   (r, in)     e.g. adapter.model.layers.3.mlp.down_proj.lora_A
//   adapter.<module>.lora_B / adam_m_B / adam_v_B   (out, r)
//   work.<name>                                     (n)         the work's named arrays
// and metadata strings { format, version, kind, step, model_fingerprint, data_fingerprint, settings, curves,
// adapters, work_tensors, work_values } (the JSON ones as JSON text: numbers round-trip exactly).

import { GradPruneError } from '../errors';
import { isJsonObject, parseJsonFile } from '../model/json';
import { encodeSafetensors, SafetensorsFile, TensorStore, type TensorToWrite } from '../model/safetensors';
import type { LoraRunSettings } from './run-settings';
import type { LoraSteps } from './step-loop';

export const RUN_SNAPSHOT_FORMAT = 'gradprune-run-snapshot';
export const RUN_SNAPSHOT_VERSION = '1';

export type RunKind = 'scoring' | 'recovery';

/** Settings a resumed run may change: how many steps, the learning rate (lower after a NaN), the GPU budget. */
export const RESUMABLE_SETTINGS: readonly string[] = ['steps', 'epochs', 'lr', 'maxGpuMemory'];

/** One adapter's trainable state. */
export interface AdapterSnapshot {
  /** PEFT's module name, e.g. model.layers.3.mlp.down_proj. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  A: Float32Array; // (r, in)
  B: Float32Array; // (out, r)
  mA: Float32Array; // (r, in) AdamW first moment of A
  vA: Float32Array; // (r, in) AdamW second moment of A
  mB: Float32Array; // (out, r)
  vB: Float32Array; // (out, r)
}

/** What a run's work keeps beside training (IgiaScorer's accumulators and factors; recovery's first evaluation). */
export interface RunWorkState {
  /** Named f32 arrays, each of any length. */
  tensors: Map<string, Float32Array>;
  /** Small plain values (JSON-able). */
  values: Record<string, unknown>;
}

/** What a snapshot must match to be continued. */
export interface RunIdentity {
  kind: RunKind;
  /** model/fingerprint.ts modelFingerprint of the model trained. */
  modelFingerprint: string;
  /** dataFingerprint of the tokenized training examples (or the caller's name for explicit batches). */
  dataFingerprint: string;
  /** The run's settings, weights as resolved ('f32' | 'f16'); all but RESUMABLE_SETTINGS must be equal to continue. */
  settings: LoraRunSettings & Record<string, unknown>;
}

export interface RunSnapshot extends RunIdentity {
  /** Steps finished: the continued run trains step `step` (0-based) next. */
  step: number;
  /** In the model's adapter order. */
  adapters: AdapterSnapshot[];
  /** Losses, lrs, grad norms of the finished steps; tokens and seconds so far. */
  curves: LoraSteps;
  work: RunWorkState;
  /** Where it was read from (decodeRunSnapshot), for messages; not stored. */
  source?: string;
}

const ADAPTER_PARTS = [
  ['A', 'lora_A'], ['mA', 'adam_m_A'], ['vA', 'adam_v_A'], ['B', 'lora_B'], ['mB', 'adam_m_B'], ['vB', 'adam_v_B'],
] as const;
type AdapterPart = (typeof ADAPTER_PARTS)[number][0];

const partLength = (a: Pick<AdapterSnapshot, 'inFeatures' | 'outFeatures'>, part: AdapterPart, rank: number) =>
  rank * (part.endsWith('A') ? a.inFeatures : a.outFeatures);
const partShape = (a: Pick<AdapterSnapshot, 'inFeatures' | 'outFeatures'>, part: AdapterPart, rank: number) =>
  part.endsWith('A') ? [rank, a.inFeatures] : [a.outFeatures, rank];

const bytesOf = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/** The snapshot as safetensors parts (header, then each tensor's bytes: views, no copies), for a streamed write. */
export function runSnapshotParts(s: RunSnapshot): Uint8Array<ArrayBuffer>[] {
  const { rank } = s.settings;
  const tensors: TensorToWrite[] = [];
  for (const a of s.adapters) {
    for (const [part, suffix] of ADAPTER_PARTS) {
      tensors.push({ name: `adapter.${a.name}.${suffix}`, dtype: 'F32', shape: partShape(a, part, rank), data: bytesOf(a[part]) });
    }
  }
  for (const [name, values] of s.work.tensors) tensors.push({ name: `work.${name}`, dtype: 'F32', shape: [values.length], data: bytesOf(values) });
  const metadata = {
    format: RUN_SNAPSHOT_FORMAT,
    version: RUN_SNAPSHOT_VERSION,
    kind: s.kind,
    step: String(s.step),
    model_fingerprint: s.modelFingerprint,
    data_fingerprint: s.dataFingerprint,
    settings: JSON.stringify(s.settings),
    curves: JSON.stringify(s.curves),
    adapters: JSON.stringify(s.adapters.map(({ name, inFeatures, outFeatures }) => ({ name, inFeatures, outFeatures }))),
    work_tensors: JSON.stringify([...s.work.tensors].map(([name, values]) => ({ name, length: values.length }))),
    work_values: JSON.stringify(s.work.values),
  };
  return encodeSafetensors(tensors, metadata);
}

export function encodeRunSnapshot(s: RunSnapshot): Blob {
  return new Blob(runSnapshotParts(s));
}

const START_AFRESH = 'Start the run afresh instead of resuming it (the snapshot cannot be used).';

/**
 * Read a snapshot written by encodeRunSnapshot, checking everything it can without the model: format and version,
 * every tensor present, F32, of its adapter's or its declared size, and finite. Refuses with GradPruneError('input')
 * naming `fileName` and what is wrong. (Whether it fits the run is checkSnapshotMatches's, at resume.)
 */
export async function decodeRunSnapshot(bytes: Blob | Uint8Array<ArrayBuffer>, fileName: string): Promise<RunSnapshot> {
  const fail = (what: string, hint = START_AFRESH) => new GradPruneError('input', `${fileName}: ${what}.`, { subject: fileName, hint });
  const blob = bytes instanceof Blob ? bytes : new Blob([bytes]);
  let store: TensorStore;
  let meta: Readonly<Record<string, string>>;
  try {
    const file = await SafetensorsFile.open(blob, fileName);
    meta = file.metadata;
    store = TensorStore.fromFiles([file]);
  } catch (e) {
    if (!(e instanceof GradPruneError)) throw e;
    throw fail(`not a readable run snapshot (${e.message.replace(/\.$/, '')}); it is damaged or truncated`);
  }
  if (meta.format !== RUN_SNAPSHOT_FORMAT) {
    throw fail(`not a GradPrune run snapshot (metadata format is ${JSON.stringify(meta.format ?? null)})`, 'Give the .resume.safetensors file a scoring or fine-tuning run wrote, or start afresh.');
  }
  if (meta.version !== RUN_SNAPSHOT_VERSION) {
    throw fail(`run snapshot version ${JSON.stringify(meta.version ?? null)} is not supported (this version reads ${RUN_SNAPSHOT_VERSION})`);
  }
  const json = (key: string): unknown => {
    if (typeof meta[key] !== 'string') throw fail(`its metadata has no "${key}"`);
    return parseJsonFile(meta[key], `${fileName} (metadata "${key}")`, 'input', { hint: START_AFRESH });
  };
  const kind = meta.kind;
  if (kind !== 'scoring' && kind !== 'recovery') throw fail(`its kind ${JSON.stringify(kind ?? null)} is neither "scoring" nor "recovery"`);
  const step = Number(meta.step);
  const settings = json('settings');
  const curves = json('curves');
  const adapterList = json('adapters');
  const workList = json('work_tensors');
  const values = json('work_values');
  if (!isJsonObject(settings) || !(Number.isInteger(settings.rank) && (settings.rank as number) > 0)) throw fail('its settings are not a LoRA run\'s settings (no rank)');
  if (!(Number.isInteger(step) && step >= 0)) throw fail(`its step ${JSON.stringify(meta.step)} is not a whole number of steps`);
  const curvesOk = isJsonObject(curves)
    && (['losses', 'lrs', 'gradNorms'] as const).every((k) => Array.isArray(curves[k]) && (curves[k] as unknown[]).length === step && (curves[k] as unknown[]).every((v) => typeof v === 'number'))
    && (['tokens', 'targetTokens', 'elapsedSeconds'] as const).every((k) => typeof curves[k] === 'number');
  if (!curvesOk) throw fail(`its curves are not ${step} steps' losses, learning rates and gradient norms`);
  const isShape = (a: unknown): a is { name: string; inFeatures: number; outFeatures: number } =>
    isJsonObject(a) && typeof a.name === 'string' && Number.isInteger(a.inFeatures) && Number.isInteger(a.outFeatures);
  if (!Array.isArray(adapterList) || !adapterList.every(isShape)) throw fail('its adapter list is not a list of { name, inFeatures, outFeatures }');
  const isWork = (w: unknown): w is { name: string; length: number } => isJsonObject(w) && typeof w.name === 'string' && Number.isInteger(w.length);
  if (!Array.isArray(workList) || !workList.every(isWork)) throw fail('its work list is not a list of { name, length }');
  if (!isJsonObject(values)) throw fail('its work values are not an object');

  const rank = settings.rank as number;
  const expected = new Set<string>();
  const read = async (name: string, length: number): Promise<Float32Array> => {
    expected.add(name);
    if (!store.has(name)) throw fail(`tensor "${name}" is missing`);
    const info = store.info(name);
    if (info.dtype !== 'F32' || info.end - info.begin !== length * 4) {
      throw fail(`tensor "${name}" is ${info.dtype} [${info.shape.join(', ')}]; it should be F32 with ${length} values`);
    }
    try {
      return await store.readF32(name);
    } catch (e) {
      if (!(e instanceof GradPruneError)) throw e;
      throw fail(e.message.replace(/\.$/, ''), 'The run had already diverged when it was saved: start afresh, with a lower learning rate.');
    }
  };
  const adapters: AdapterSnapshot[] = [];
  for (const a of adapterList) {
    const parts = {} as Record<AdapterPart, Float32Array>;
    for (const [part, suffix] of ADAPTER_PARTS) parts[part] = await read(`adapter.${a.name}.${suffix}`, partLength(a, part, rank));
    adapters.push({ name: a.name, inFeatures: a.inFeatures, outFeatures: a.outFeatures, ...parts });
  }
  const tensors = new Map<string, Float32Array>();
  for (const w of workList) tensors.set(w.name, await read(`work.${w.name}`, w.length));
  const stray = [...store.tensors.keys()].find((n) => !expected.has(n));
  if (stray) throw fail(`tensor "${stray}" is not part of a run snapshot`);
  return {
    kind,
    step,
    modelFingerprint: meta.model_fingerprint ?? '',
    dataFingerprint: meta.data_fingerprint ?? '',
    settings: settings as RunSnapshot['settings'],
    adapters,
    curves: curves as unknown as LoraSteps,
    work: { tensors, values },
    source: fileName,
  };
}

const shown = (v: unknown) => (v === undefined ? 'not set' : JSON.stringify(v));

/**
 * Refuse (GradPruneError('input'), naming the snapshot and what differs) to continue `s` as the run `run`: another
 * kind of run, another model, other data, or a setting outside RESUMABLE_SETTINGS changed; or it has done more
 * steps than the run is to train.
 */
export function checkSnapshotMatches(s: RunSnapshot, run: RunIdentity): void {
  const file = s.source ?? 'The run snapshot';
  const refuse = (what: string, hint: string) => new GradPruneError('input', `${file} cannot be continued here: ${what}.`, { subject: s.source ?? 'snapshot', hint });
  const again = 'Resume with the model, data and settings of the interrupted run, or start afresh.';
  if (s.kind !== run.kind) throw refuse(`it is a ${s.kind} run's snapshot, not a ${run.kind} run's`, again);
  if (s.modelFingerprint !== run.modelFingerprint) throw refuse('it was saved by a run on another model (the model fingerprint differs)', again);
  if (s.dataFingerprint !== run.dataFingerprint) throw refuse('it was saved by a run on other data (the tokenized examples differ)', again);
  const keys = new Set([...Object.keys(s.settings), ...Object.keys(run.settings)].filter((k) => !RESUMABLE_SETTINGS.includes(k)));
  for (const key of keys) {
    const [was, now] = [s.settings[key], run.settings[key]];
    if (JSON.stringify(was) !== JSON.stringify(now)) {
      throw refuse(`its setting ${key} was ${shown(was)}, this run's is ${shown(now)}`, `Resume with ${key} ${shown(was)} (only ${RESUMABLE_SETTINGS.join(', ')} may change), or start afresh.`);
    }
  }
  if (s.step > run.settings.steps) {
    throw refuse(`it has done ${s.step} steps, more than this run's ${run.settings.steps}`, `Resume with at least ${s.step} steps, or start afresh.`);
  }
}

/** A short identity of tokenized training examples (token ids, loss masks and the pad id, in order). */
export async function dataFingerprint(examples: readonly { inputIds: ArrayLike<number>; lossMask: ArrayLike<number> }[], padTokenId: number): Promise<string> {
  const total = examples.reduce((n, e) => n + 1 + 2 * e.inputIds.length, 2);
  const words = new Int32Array(total); // [count, pad, then per example: length, ids, mask]
  words[0] = examples.length;
  words[1] = padTokenId;
  let at = 2;
  for (const e of examples) {
    words[at++] = e.inputIds.length;
    words.set(e.inputIds, at);
    words.set(e.lossMask, at + e.inputIds.length);
    at += 2 * e.inputIds.length;
  }
  const digest = await crypto.subtle.digest('SHA-256', words);
  return [...new Uint8Array(digest)].slice(0, 16).map((b) => b.toString(16).padStart(2, '0')).join('');
}
