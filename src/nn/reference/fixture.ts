// Node only (tests, scripts): a fixture model folder → config, tensor store, f32 weights; and a reference file's tensors.

import path from 'node:path';
import { normalizeConfig, type ModelConfig } from '../../model/config';
import { openFile, openFolder } from '../../model/node-files';
import { SafetensorsFile, TensorStore } from '../../model/safetensors';
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
