// Test support for the ONNX export (Node): a fixture exported into a temporary folder, a pruned fixture checkpoint
// built from the fixtures' own pruned weights (transformers' numbers, not ours), greedy tokens from the CPU
// reference engine (checked against transformers in src/nn/reference), and the optimum-layout feeds for an
// onnxruntime session.
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { prunedConfig, configText } from '../export/config';
import { FolderSink } from '../export/node-sink';
import { exportOnnxFolder, type OnnxExportOptions } from '../export/onnx/folder';
import { openCheckpoint } from '../model/checkpoint';
import { normalizeConfig, type ModelConfig } from '../model/config';
import { openFolder } from '../model/node-files';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { argmaxId } from '../eval/sampler';
import { fixtureDir } from './paths';

export { decoderFeeds } from '../export/onnx/greedy';

export const ONNX_FIXTURES = ['tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3'] as const;

export const tempDir = (prefix: string): Promise<string> => mkdtemp(path.join(os.tmpdir(), `gradprune-${prefix}-`));

/** Export the model folder `dir` as ONNX into a new temporary folder; returns the folder. */
export async function exportOnnxToTemp(dir: string, opts: OnnxExportOptions = {}): Promise<string> {
  const out = path.join(await tempDir('onnx'), 'onnx-model');
  await exportOnnxFolder(new FolderSink(out), await openCheckpoint(await openFolder(dir)), opts);
  return out;
}

/**
 * The fixture's pruned checkpoint for a plan (`pruned_prune{N}_merge{M}`): transformers' pruned weights (f32) with
 * config.json's layer count, and the fixture's tokenizer and generation files.
 */
export async function prunedFixtureFolder(name: string, plan: string): Promise<string> {
  const src = fixtureDir(name);
  const out = path.join(await tempDir('pruned'), `${name}-${plan}`);
  const plans = JSON.parse(await readText(path.join(src, 'reference', 'gradprune.json'))).plans as Array<{ tag: string; num_hidden_layers: number }>;
  const layers = plans.find((p) => p.tag === plan)!.num_hidden_layers;
  await mkdir(out);
  const raw = JSON.parse(await readText(path.join(src, 'config.json')));
  await writeFile(path.join(out, 'config.json'), configText(prunedConfig(raw, layers)));
  await copyFile(path.join(src, 'reference', `pruned_${plan}.safetensors`), path.join(out, 'model.safetensors'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']) {
    await copyFile(path.join(src, f), path.join(out, f)).catch(() => undefined);
  }
  return out;
}

/** A copy of the fixture model folder `name` (no reference/) with its config.json edited. */
export async function fixtureWithConfig(name: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
  const dir = path.join(await tempDir('model'), name);
  await mkdir(dir);
  for (const f of await readdir(fixtureDir(name))) if (f !== 'reference') await copyFile(path.join(fixtureDir(name), f), path.join(dir, f));
  const config = JSON.parse(await readText(path.join(dir, 'config.json')));
  edit(config);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

const readText = (file: string): Promise<string> => readFile(file, 'utf8');

/** Greedy continuation by the CPU reference engine (full forward per token), stopping after an id in `stop`. */
export async function referenceGreedy(dir: string, prompt: readonly number[], maxNewTokens: number, stop: readonly number[] = []): Promise<number[]> {
  const { weights, config } = await loadFixtureModel(dir);
  const model = new ReferenceModel(weights, null, config.maxPositionEmbeddings);
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const { logits } = model.forward(Int32Array.from(ids), 1, ids.length);
    const next = argmaxId(logits.subarray((ids.length - 1) * config.vocabSize));
    out.push(next);
    ids.push(next);
    if (stop.includes(next)) break;
  }
  return out;
}

export async function configOf(dir: string): Promise<ModelConfig> {
  return normalizeConfig(JSON.parse(await readText(path.join(dir, 'config.json'))));
}
