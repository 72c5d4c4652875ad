// Host (f32) weights of a Llama-family decoder for the CPU reference, read tensor by tensor from a TensorStore.

import { GradPruneError } from '../../errors';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../../model/config';
import { numel, type TensorStore } from '../../model/safetensors';

export interface LinearWeights {
  W: Float32Array; // (out, in)
  b: Float32Array | null; // (out)
}

export interface LayerWeights {
  inputNorm: Float32Array; // (C)
  postNorm: Float32Array; // (C)
  /** Qwen3's per-head RMSNorm weights on q and k (self_attn.q_norm / k_norm), null where the model has none. */
  qNorm: Float32Array | null; // (HD)
  kNorm: Float32Array | null; // (HD)
  linear: Record<LinearModule, LinearWeights>;
}

export interface ModelWeights {
  config: ModelConfig;
  embed: Float32Array; // (V, C)
  layers: LayerWeights[];
  finalNorm: Float32Array; // (C)
  /** The embedding itself when the model ties them. */
  lmHead: Float32Array; // (V, C)
}

/** Read one tensor as f32 after checking its shape against the config. */
async function readChecked(store: TensorStore, name: string, shape: number[]): Promise<Float32Array> {
  const info = store.info(name);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new GradPruneError('tensor', `Tensor "${name}" in ${info.file} has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}].`, {
      subject: name,
      hint: 'The config.json does not belong to these weights: use the config from the same checkpoint.',
    });
  }
  const data = await store.readF32(name);
  if (data.length !== numel(shape)) throw new GradPruneError('tensor', `Tensor "${name}" has ${data.length} values, expected ${numel(shape)}.`, { subject: name });
  return data;
}

export async function loadModelWeights(config: ModelConfig, store: TensorStore): Promise<ModelWeights> {
  const C = config.hiddenSize;
  const V = config.vocabSize;
  const embed = await readChecked(store, 'model.embed_tokens.weight', [V, C]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const linear = {} as Record<LinearModule, LinearWeights>;
    for (const m of LINEAR_MODULES) {
      const [out, inp] = linearShape(config, m);
      const wName = linearWeightName(l, m);
      const W = await readChecked(store, wName, [out, inp]);
      const b = config.bias[m] ? await readChecked(store, wName.replace(/weight$/, 'bias'), [out]) : null;
      linear[m] = { W, b };
    }
    layers.push({
      inputNorm: await readChecked(store, `model.layers.${l}.input_layernorm.weight`, [C]),
      postNorm: await readChecked(store, `model.layers.${l}.post_attention_layernorm.weight`, [C]),
      qNorm: config.qkNorm ? await readChecked(store, `model.layers.${l}.self_attn.q_norm.weight`, [config.headDim]) : null,
      kNorm: config.qkNorm ? await readChecked(store, `model.layers.${l}.self_attn.k_norm.weight`, [config.headDim]) : null,
      linear,
    });
  }
  const finalNorm = await readChecked(store, 'model.norm.weight', [C]);
  const lmHead = config.tiedEmbeddings ? embed : await readChecked(store, 'lm_head.weight', [V, C]);
  return { config, embed, layers, finalNorm, lmHead };
}
