// Node only (tests, scripts): a fixture model folder → config, tensor store, f32 weights; a reference file's tensors;
// and the fixtures' scoring run replayed on the CPU reference.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TokenBatch } from '../../data/types';
import { normalizeConfig, type ModelConfig } from '../../model/config';
import { openFile, openFolder } from '../../model/node-files';
import { SafetensorsFile, TensorStore } from '../../model/safetensors';
import { DEFAULT_LORA, loadLoraAdapters, type LoraAdapter } from '../lora';
import { loraState, ReferenceModel } from './model';
import { referenceScoringRun, warmupLr, type ScoringStep } from './train';
import { loadModelWeights, type ModelWeights } from './weights';

export interface FixtureModel {
  config: ModelConfig;
  store: TensorStore;
  weights: ModelWeights;
}

export async function loadFixtureModel(dir: string): Promise<FixtureModel> {
  const files = await openFolder(dir);
  const config = normalizeConfig(JSON.parse(await files.get('config.json')!.text()), path.join(dir, 'config.json'));
  const store = await TensorStore.open(files);
  return { config, store, weights: await loadModelWeights(config, store) };
}

/** A reference safetensors file (forward / lora_grad / gradprune) of a fixture folder. */
export async function openReference(dir: string, name: string): Promise<TensorStore> {
  const file = path.join(dir, 'reference', name);
  return TensorStore.fromFiles([await SafetensorsFile.open(await openFile(file), name)]);
}

/** The rows of a (B, T) row-major array. */
export const batchRows = (a: Int32Array, B: number, T: number): Int32Array[] => Array.from({ length: B }, (_, b) => a.subarray(b * T, (b + 1) * T));

/** A fixture's lora_grad.safetensors case: the model, its reference, the adapters it used and its batch. */
export async function loraGradCase(dir: string) {
  const fm = await loadFixtureModel(dir);
  const ref = await openReference(dir, 'lora_grad.safetensors');
  const [B, T] = ref.info('input_ids').shape;
  const adapters = await loadLoraAdapters(fm.config, DEFAULT_LORA, (n) => ref.readF32(n));
  const batch: TokenBatch = { B, T, inputIds: await ref.readI32('input_ids'), lossMask: await ref.readI32('loss_mask'), padTokenId: 0 };
  return { fm, ref, B, T, adapters, batch };
}

export interface FixtureScoring extends FixtureModel {
  /** reference/gradprune.safetensors and reference/gradprune.json (its plans). */
  ref: TensorStore;
  refJson: any; // gradprune.json as the fixture script wrote it (plans, receivers, counts)
  /** The run's initial adapters (init.*) and each step's clipped gradients. */
  adapters: LoraAdapter[];
  steps: ScoringStep[];
}

/** The fixture run's batches (reference/gradprune.safetensors): S steps of (B, T) rows, as the engine takes them. */
export async function fixtureRunBatches(ref: TensorStore): Promise<{ S: number; B: number; T: number; batch: (step: number) => TokenBatch }> {
  const ids = await ref.readI32('input_ids'); // (S, B, T)
  const mask = await ref.readI32('loss_mask'); // (S, B, T)
  const [S, B, T] = ref.info('input_ids').shape;
  const step = (a: Int32Array, s: number) => a.subarray(s * B * T, (s + 1) * B * T);
  return { S, B, T, batch: (s) => ({ B, T, inputIds: step(ids, s), lossMask: step(mask, s), padTokenId: 0 }) };
}

/** The fixtures' scoring run on the CPU reference: their init adapters and batches, lr 1e-3·min(1, s/2), clip 1. */
export async function referenceFixtureScoring(dir: string): Promise<FixtureScoring> {
  const fixture = await loadFixtureModel(dir);
  const ref = await openReference(dir, 'gradprune.safetensors');
  const refJson = JSON.parse(await readFile(path.join(dir, 'reference/gradprune.json'), 'utf8'));
  const adapters = await loadLoraAdapters(fixture.config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.');
  const model = new ReferenceModel(fixture.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
  const { S, batch } = await fixtureRunBatches(ref);
  const steps = referenceScoringRun(model, { steps: S, lr: (s) => warmupLr(1e-3, 2, s), maxGradNorm: 1, batch });
  return { ...fixture, ref, refJson, adapters, steps };
}
