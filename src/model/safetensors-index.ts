// model.safetensors.index.json: which shard holds each tensor. Only "weight_map" is read (as transformers does);
// it must be an object of tensor name → shard file name, every shard a `.safetensors` file beside the index.

import { GradPruneError } from '../errors';
import { describeJsonType, isJsonObject, parseJsonFile, readJsonBlob } from './json';

export const INDEX_FILE = 'model.safetensors.index.json';

const REEXPORT = 'The index is damaged or was edited by hand: download or export the checkpoint again.';

/** An index names each tensor once (~100 bytes each): 64 MB is room for over half a million tensors. */
const MAX_INDEX_BYTES = 64 * 2 ** 20;

/** The index file read (bounded in size) and validated. */
export async function readSafetensorsIndexFile(blob: Blob, fileName = INDEX_FILE): Promise<Map<string, string>> {
  return weightMapOf(await readJsonBlob(blob, fileName, 'file', { maxBytes: MAX_INDEX_BYTES, hint: REEXPORT }), fileName);
}

/** The index's weight map (tensor → shard), validated; the shards it names are checked by the caller. */
export function readSafetensorsIndex(text: string, fileName = INDEX_FILE): Map<string, string> {
  return weightMapOf(parseJsonFile(text, fileName, 'file', { hint: REEXPORT }), fileName);
}

function weightMapOf(index: unknown, fileName: string): Map<string, string> {
  const bad = (what: string, subject = fileName) => new GradPruneError('file', `${fileName} ${what}.`, { subject, hint: REEXPORT });
  if (!isJsonObject(index)) throw bad(`holds ${describeJsonType(index)}, not an object with a "weight_map"`);
  const map = index.weight_map;
  if (map === undefined) throw bad('has no "weight_map"');
  if (!isJsonObject(map)) throw bad(`has a "weight_map" that is ${describeJsonType(map)}, not an object of tensor name → shard file`);
  const entries = Object.entries(map);
  if (entries.length === 0) throw bad('has an empty "weight_map": it names no tensor');
  for (const [tensor, shard] of entries) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors')) {
      throw bad(`maps "${tensor}" to ${JSON.stringify(shard)}, not a .safetensors file name`, tensor);
    }
    if (/[\\/]/.test(shard) || shard === '.safetensors') {
      throw bad(`maps "${tensor}" to "${shard}", which is not a file name beside the index`, tensor);
    }
  }
  return new Map(entries as [string, string][]);
}
