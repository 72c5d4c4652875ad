import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { linearShape, linearWeightName, LINEAR_MODULES, normalizeConfig } from '../model/config';
import { encodeSafetensors } from '../model/safetensors';
import { fixtureDir } from '../testing/paths';
import { decodeIgiaState, encodeIgiaState, mergeableLayers, type IgiaState } from './igia-state';

const config = normalizeConfig(JSON.parse(await readFile(path.join(fixtureDir('tiny-llama'), 'config.json'), 'utf8')));

function syntheticState(layers: number[], steps = 3, rank = 2): IgiaState {
  const factors = new Map<string, Float32Array>();
  let x = 1;
  for (const l of layers) {
    for (const m of LINEAR_MODULES) {
      const [out, inp] = linearShape(config, m);
      factors.set(linearWeightName(l, m), Float32Array.from({ length: steps * rank * (inp + out) }, () => (x = (x * 48271) % 2147483647) / 2147483647 - 0.5));
    }
  }
  return { rank, steps, numLayers: config.numLayers, modelFingerprint: 'abc123', factors };
}

async function rejects(p: Promise<unknown>): Promise<GradPruneError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(GradPruneError);
    return e as GradPruneError;
  }
  throw new Error('expected a GradPruneError');
}

describe('IGIA state file', () => {
  it('round-trips every factor exactly, with its metadata', async () => {
    const state = syntheticState([2, 4]);
    const back = await decodeIgiaState(encodeIgiaState(state), 'scores.igia.safetensors', config, 'abc123');
    expect(back.rank).toBe(2);
    expect(back.steps).toBe(3);
    expect(back.numLayers).toBe(6);
    expect(mergeableLayers(back)).toEqual([2, 4]);
    for (const [name, v] of state.factors) expect(back.factors.get(name)).toEqual(v);
  });

  it('refuses a state from another model: layer count, then fingerprint', async () => {
    const blob = encodeIgiaState(syntheticState([1]));
    const six = await rejects(decodeIgiaState(blob, 'x.igia.safetensors', { ...config, numLayers: 5 }, 'abc123'));
    expect(six.message).toMatch(/^x\.igia\.safetensors: it was scored on a model of 6 layers, but this model has 5\./);
    const other = await rejects(decodeIgiaState(blob, 'x.igia.safetensors', config, 'fff'));
    expect(other.message).toMatch(/x\.igia\.safetensors: it was scored on a different model/);
    expect(other.code).toBe('file');
  });

  it('refuses a safetensors file that is not an IGIA state, and a factor of the wrong size', async () => {
    const plain = new Blob(encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]) as BlobPart[]);
    expect((await rejects(decodeIgiaState(plain, 'model.safetensors', config, 'abc123'))).message).toMatch(/model\.safetensors: not a GradPruner IGIA state/);

    // A factor tensor of the right name but another rank's size, with valid metadata.
    const meta = { format: 'gradprune-igia', version: '1', rank: '2', steps: '3', num_layers: '6', model_fingerprint: 'abc123' };
    const wrong = new Blob(encodeSafetensors([{ name: 'factors.model.layers.1.self_attn.q_proj', dtype: 'F32', shape: [3, 10], data: new Uint8Array(120) }], meta) as BlobPart[]);
    const e = await rejects(decodeIgiaState(wrong, 's.igia.safetensors', config, 'abc123'));
    expect(e.message).toMatch(/^s\.igia\.safetensors: tensor "factors\.model\.layers\.1\.self_attn\.q_proj" is F32 \[3, 10\]; rank 2 over 3 steps needs F32 with 768 values\./);
  });
});
