// Node-only helpers for the recovery tests: the fixtures' pruned tiny-llama (prune 3, merge 3: the reference weights
// of gradprune.json's plan) as an ordinary checkpoint folder, and a small slice of a shared dataset file.
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { configText, prunedConfig } from '../export/config';
import { DATASETS, fixtureDir } from './paths';

/** A temporary folder holding tiny-llama pruned to 3 layers (reference/pruned_prune3_merge3.safetensors, F32). */
export async function prunedTinyLlamaFolder(): Promise<string> {
  const src = fixtureDir('tiny-llama');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-pruned-'));
  const raw = JSON.parse(await readFile(path.join(src, 'config.json'), 'utf8'));
  await writeFile(path.join(dir, 'config.json'), configText(prunedConfig(raw, 3)));
  await copyFile(path.join(src, 'reference', 'pruned_prune3_merge3.safetensors'), path.join(dir, 'model.safetensors'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    await copyFile(path.join(src, f), path.join(dir, f));
  }
  return dir;
}

/** The first `lines` data lines of a shared dataset file (plus its header for CSV), written to a temporary file. */
export async function datasetSlice(relative: string, lines: number): Promise<string> {
  const text = await readFile(path.join(DATASETS, relative), 'utf8');
  const all = text.split('\n').filter((l) => l.trim() !== '');
  const header = relative.endsWith('.csv') ? 1 : 0;
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'gradprune-data-')), path.basename(relative));
  await writeFile(file, all.slice(0, header + lines).join('\n') + '\n');
  return file;
}
