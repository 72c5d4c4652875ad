// What a later merge needs from a scoring run, off the GPU: each merge-candidate module's per-step gradient
// factors (gA (r, in), gB (out, r) of every step). From them F = (1/t) Σ_s (gB_s·gA_s)² is rebuilt on the GPU
// by the same kernel IgiaScorer uses, so a merge from a saved state equals a merge right after scoring.
//
// On disk: `scores.igia.safetensors` beside scores.json, one F32 tensor per module,
//   `factors.model.layers.L.<self_attn|mlp>.<module>`  (steps, r·(in + out))  per step gA then gB,
// and metadata { format, version, rank, steps, num_layers, model_fingerprint } to check it against the model.
// Factors are t·r·(in + out) numbers per module, far smaller than the (out, in) F they stand for. A live
// IgiaScorer keeps them in host memory in this same form (see ./factor-store.ts), so its state is a set of views.

import rebuildCode from '../../shaders/igia_rebuild.wgsl?raw';
import { GradPruneError } from '../errors';
import { ceilDiv, type Kernel } from '../gpu/kernel';
import { createTensor, tensorFrom, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { encodeSafetensors, SafetensorsFile, TensorStore } from '../model/safetensors';
import { f32, kernelLib, u32 } from '../nn/kernels/lib';
import { factorRowLength } from './factor-store';

export const IGIA_STATE_FORMAT = 'gradprune-igia';
export const IGIA_STATE_VERSION = '1';

export interface IgiaState {
  rank: number;
  /** Steps recorded (t). */
  steps: number;
  numLayers: number;
  /** Identifies the model the gradients came from (see modelFingerprint). */
  modelFingerprint: string;
  /** (steps, r·(in + out)) per module, keyed by the module's weight name (`model.layers.L.self_attn.q_proj.weight`). */
  factors: Map<string, Float32Array>;
}

const tensorName = (weightName: string) => `factors.${weightName.replace(/\.weight$/, '')}`;

/** What holds a state's factors as they are gathered: an IgiaScorer (./igia.ts). */
export interface IgiaStateSource {
  /** Resolves once every recorded step's factors are in host memory. */
  flush(): Promise<void>;
  hostState(modelFingerprint: string): IgiaState;
}

/** The scorer's factors as a state (they are already in host memory: this waits for the last steps to arrive). */
export async function igiaStateFromScorer(scorer: IgiaStateSource, config: ModelConfig, rank: number, modelFingerprint: string): Promise<IgiaState> {
  await scorer.flush();
  const state = scorer.hostState(modelFingerprint);
  if (state.rank !== rank || state.numLayers !== config.numLayers) {
    throw new GradPruneError('input', `The scorer kept rank-${state.rank} factors of ${state.numLayers} layers, not rank ${rank} of ${config.numLayers}.`, { subject: 'rank' });
  }
  return state;
}

/** Layers whose seven modules all have factors (the layers that can be merged). */
export function mergeableLayers(state: IgiaState): number[] {
  const out: number[] = [];
  for (let l = 0; l < state.numLayers; l++) if (LINEAR_MODULES.every((m) => state.factors.has(linearWeightName(l, m)))) out.push(l);
  return out;
}

/** The state as a safetensors file. */
export function encodeIgiaState(state: IgiaState): Blob {
  const tensors = [...state.factors].map(([name, values]) => ({
    name: tensorName(name),
    dtype: 'F32' as const,
    shape: [state.steps, values.length / Math.max(1, state.steps)],
    data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  }));
  const metadata = {
    format: IGIA_STATE_FORMAT,
    version: IGIA_STATE_VERSION,
    rank: String(state.rank),
    steps: String(state.steps),
    num_layers: String(state.numLayers),
    model_fingerprint: state.modelFingerprint,
    layout: 'per step: gA (rank, in) then gB (out, rank), row-major f32',
  };
  return new Blob(encodeSafetensors(tensors, metadata) as BlobPart[]);
}

/**
 * Read a state saved by encodeIgiaState and check it against the model it will merge: same layer count, same
 * fingerprint, every tensor of the right length. Throws GradPruneError('file') naming the file otherwise.
 */
export async function decodeIgiaState(blob: Blob, fileName: string, config: ModelConfig, modelFingerprint: string): Promise<IgiaState> {
  const file = await SafetensorsFile.open(blob, fileName);
  const meta = file.metadata;
  const fail = (what: string, hint?: string) => new GradPruneError('file', `${fileName}: ${what}.`, { subject: fileName, hint });
  if (meta.format !== IGIA_STATE_FORMAT) throw fail(`not a GradPruner IGIA state (metadata format is ${JSON.stringify(meta.format ?? null)})`, 'Give the .igia.safetensors file written by `gradprune score` beside its scores.json.');
  if (meta.version !== IGIA_STATE_VERSION) throw fail(`IGIA state version ${meta.version} is not supported (expected ${IGIA_STATE_VERSION})`, 'Score the model again with this version.');
  const rank = Number(meta.rank);
  const steps = Number(meta.steps);
  const numLayers = Number(meta.num_layers);
  if (!(Number.isInteger(rank) && rank > 0 && Number.isInteger(steps) && steps > 0 && Number.isInteger(numLayers))) {
    throw fail(`its metadata (rank ${meta.rank}, steps ${meta.steps}, num_layers ${meta.num_layers}) is invalid`);
  }
  if (numLayers !== config.numLayers) {
    throw fail(`it was scored on a model of ${numLayers} layers, but this model has ${config.numLayers}`, 'Score this model, or prune the model that was scored.');
  }
  if (meta.model_fingerprint !== modelFingerprint) {
    throw fail('it was scored on a different model (the model fingerprint differs)', 'Score this model, or prune the model that was scored.');
  }
  const store = TensorStore.fromFiles([file]);
  const factors = new Map<string, Float32Array>();
  for (let l = 0; l < numLayers; l++) {
    for (const m of LINEAR_MODULES) {
      const weight = linearWeightName(l, m);
      const name = tensorName(weight);
      if (!store.has(name)) continue;
      const info = store.info(name);
      const want = steps * factorRowLength(config, m, rank);
      if (info.dtype !== 'F32' || info.end - info.begin !== want * 4) {
        throw fail(`tensor "${name}" is ${info.dtype} [${info.shape.join(', ')}]; rank ${rank} over ${steps} steps needs F32 with ${want} values`);
      }
      factors.set(weight, await store.readF32(name));
    }
  }
  const known = new Set([...factors.keys()].map(tensorName));
  const stray = [...store.tensors.keys()].find((n) => !known.has(n));
  if (stray) throw fail(`tensor "${stray}" is not a factor of this model's layers`);
  return { rank, steps, numLayers, modelFingerprint, factors };
}

/**
 * Rebuilds F on the GPU from a host-side state, for a saved state and a live scorer alike (the scorer passes a
 * function that gives its state as it stands).
 */
export class IgiaRebuilder {
  private readonly kernel: Kernel;
  private readonly state: () => IgiaState;

  constructor(private readonly device: GPUDevice, private readonly config: ModelConfig, state: IgiaState | (() => IgiaState)) {
    this.kernel = kernelLib(device).kernel({ label: 'igiaRebuild', code: rebuildCode, entryPoint: 'igiaRebuild', bindings: ['write', 'read', 'uniform'], common: false });
    this.state = typeof state === 'function' ? state : () => state;
  }

  /** F of one module, (out, in); the caller owns (and destroys) the tensor. */
  importance(layer: number, module: LinearModule): Tensor {
    const state = this.state();
    const values = state.factors.get(linearWeightName(layer, module));
    if (!values) {
      throw new GradPruneError('input', `No gradient factors were kept for layer ${layer} ${module}, so its importance cannot be rebuilt and that layer cannot be merged.`, {
        subject: `layer ${layer}`,
        hint: 'Merge only layers the scoring run kept factors for (every layer but 0 by default), or score again.',
      });
    }
    const { rank, steps } = state;
    if (steps === 0) throw new GradPruneError('input', 'No IGIA steps were recorded yet.', { subject: 'steps' });
    const [out, inp] = linearShape(this.config, module);
    const factors = tensorFrom(this.device, `igia.factors.${layer}.${module}`, [steps, rank * (inp + out)], values);
    const importance = createTensor(this.device, `igia.F.${layer}.${module}`, [out, inp]);
    const call = this.kernel.call(`igiaRebuild.${layer}.${module}`, [importance, factors], [ceilDiv(inp, 16), ceilDiv(out, 16)], [
      u32(rank), u32(inp), u32(out), u32(steps), f32(1 / steps),
    ]);
    const encoder = this.device.createCommandEncoder({ label: 'igiaRebuild' });
    const pass = encoder.beginComputePass({ label: 'igiaRebuild' });
    call.encode(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    call.destroy();
    factors.buffer.destroy(); // freed once the submitted work is done
    return importance;
  }
}
