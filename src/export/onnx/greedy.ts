// Greedy generation on an exported fp32 graph through any onnxruntime (web in the studio's worker, node in tests),
// fed as transformers.js feeds it: the prompt once, then one token per call with the returned present.* as the next
// past_key_values. The runtime is passed in, so this file imports none.

import type { ModelConfig } from '../../model/config';

export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
}

export interface OrtLike {
  Tensor: new (type: 'int64' | 'float32' | 'float16', data: BigInt64Array | Float32Array | Uint16Array, dims: number[]) => OrtTensorLike;
}

export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
}

export interface DecoderRow {
  ids: number[];
  /** One entry per cached + new position (1: attend, 0: padding). */
  mask: number[];
  positions: number[];
}

/** One call's feeds in optimum's layout; `past` is the previous call's outputs (null: an empty cache). */
export function decoderFeeds(
  ort: OrtLike,
  config: ModelConfig,
  rows: DecoderRow[],
  past: Record<string, OrtTensorLike> | null,
  kvType: 'float32' | 'float16' = 'float32',
): Record<string, OrtTensorLike> {
  const B = rows.length;
  const i64 = (a: number[][]) => BigInt64Array.from(a.flat().map((v) => BigInt(v)));
  const feeds: Record<string, OrtTensorLike> = {
    input_ids: new ort.Tensor('int64', i64(rows.map((r) => r.ids)), [B, rows[0].ids.length]),
    attention_mask: new ort.Tensor('int64', i64(rows.map((r) => r.mask)), [B, rows[0].mask.length]),
    position_ids: new ort.Tensor('int64', i64(rows.map((r) => r.positions)), [B, rows[0].positions.length]),
  };
  for (let l = 0; l < config.numLayers; l++) {
    for (const kind of ['key', 'value']) {
      const empty = kvType === 'float32' ? new Float32Array(0) : new Uint16Array(0);
      feeds[`past_key_values.${l}.${kind}`] = past?.[`present.${l}.${kind}`] ?? new ort.Tensor(kvType, empty, [B, config.numKvHeads, 0, config.headDim]);
    }
  }
  return feeds;
}

/** Up to `maxNewTokens` greedy tokens after `prompt`, stopping after one in `stopIds` (fp32 graph). */
export async function onnxGreedy(ort: OrtLike, session: OrtSessionLike, config: ModelConfig, prompt: readonly number[], maxNewTokens: number, stopIds: readonly number[]): Promise<number[]> {
  const out: number[] = [];
  const V = config.vocabSize;
  let past: Record<string, OrtTensorLike> | null = null;
  let row: DecoderRow = { ids: [...prompt], mask: prompt.map(() => 1), positions: prompt.map((_, i) => i) };
  for (let step = 0; step < maxNewTokens; step++) {
    const result: Record<string, OrtTensorLike> = await session.run(decoderFeeds(ort, config, [row], past));
    const logits = result.logits.data as Float32Array;
    const last = logits.subarray(logits.length - V);
    let next = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[next]) next = v;
    out.push(next);
    if (stopIds.includes(next)) break;
    past = result;
    const position = prompt.length + out.length - 1;
    row = { ids: [next], mask: new Array<number>(position + 1).fill(1), positions: [position] };
  }
  return out;
}
