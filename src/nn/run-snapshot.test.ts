// A run snapshot's file form: everything comes back as it was written (f32 arrays bit for bit, f64 curves exactly),
// and each kind of bad file is refused with a message naming the file and what is wrong.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { encodeSafetensors } from '../model/safetensors';
import { resolveScoringSettings } from './run-settings';
import { checkSnapshotMatches, dataFingerprint, decodeRunSnapshot, encodeRunSnapshot, runSnapshotParts, type RunSnapshot } from './run-snapshot';

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) * 1e-3);
const settings = { ...resolveScoringSettings({ steps: 5, rank: 2 }), weights: 'f32' as const };

function snapshot(): RunSnapshot {
  const adapter = (name: string, inFeatures: number, outFeatures: number, seed: number) => ({
    name, inFeatures, outFeatures,
    A: values(2 * inFeatures, seed), mA: values(2 * inFeatures, seed + 1), vA: values(2 * inFeatures, seed + 2).map(Math.abs),
    B: values(outFeatures * 2, seed + 3), mB: values(outFeatures * 2, seed + 4), vB: values(outFeatures * 2, seed + 5).map(Math.abs),
  });
  return {
    kind: 'scoring',
    step: 2,
    modelFingerprint: 'model-abc',
    dataFingerprint: 'data-def',
    settings,
    adapters: [adapter('model.layers.0.self_attn.q_proj', 8, 8, 1), adapter('model.layers.0.mlp.down_proj', 16, 8, 2)],
    // lr from the schedule is an f64 (1e-4 · 1/3): it must come back exactly.
    curves: { losses: [2.5, 2.25], lrs: [0, 1e-4 / 3], gradNorms: [0.5, 0.75], tokens: 64, targetTokens: 40, elapsedSeconds: 1.5 },
    work: { tensors: new Map([['igia.sums', values(6, 9)], ['igia.history', values(0, 0)]]), values: { before: { loss: 3.125 } } },
  };
}

const bytesOf = async (s: RunSnapshot) => new Uint8Array(await encodeRunSnapshot(s).arrayBuffer());
const refusal = (bytes: Uint8Array<ArrayBuffer>) => decodeRunSnapshot(bytes, 'x.resume.safetensors').then(() => null, (e: unknown) => e as GradPruneError);

/** The snapshot's file with its header's metadata edited (tensors as they are). */
function withMetadata(s: RunSnapshot, edit: (meta: Record<string, string>) => void): Uint8Array<ArrayBuffer> {
  const parts = runSnapshotParts(s);
  const headerLength = Number(new DataView(parts[0].buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(parts[0].subarray(8, 8 + headerLength)));
  edit(header.__metadata__);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const tensors = names.map((name, i) => ({ name, dtype: 'F32' as const, shape: header[name].shape, data: parts[1 + i] }));
  return new Uint8Array(Buffer.concat(encodeSafetensors(tensors, header.__metadata__)));
}

describe('run snapshots', () => {
  it('round-trip exactly', async () => {
    const s = snapshot();
    const back = await decodeRunSnapshot(await bytesOf(s), 'x.resume.safetensors');
    expect(back).toEqual({ ...s, source: 'x.resume.safetensors' });
    expect(back.curves.lrs[1]).toBe(1e-4 / 3);
  });

  it('refuse a file that is not a snapshot, of another version, truncated, or with a tensor missing or of the wrong size', async () => {
    const s = snapshot();
    const good = await bytesOf(s);
    const expectRefusal = async (bytes: Uint8Array<ArrayBuffer>, message: RegExp) => {
      const e = await refusal(bytes);
      expect(e).toBeInstanceOf(GradPruneError);
      expect(e!.code).toBe('input');
      expect(e!.message).toMatch(/^x\.resume\.safetensors[: ]/);
      expect(e!.message).toMatch(message);
    };
    await expectRefusal(new Uint8Array(Buffer.from('{"hello": 1}')), /not a readable run snapshot .*damaged or truncated/);
    await expectRefusal(good.slice(0, good.length - 7), /not a readable run snapshot .*damaged or truncated/);
    await expectRefusal(withMetadata(s, (m) => (m.format = 'gradprune-igia')), /not a GradPrune run snapshot \(metadata format is "gradprune-igia"\)/);
    await expectRefusal(withMetadata(s, (m) => (m.version = '0')), /run snapshot version "0" is not supported \(this version reads 1\)/);
    await expectRefusal(withMetadata(s, (m) => (m.curves = '{"losses": [1]')), /metadata "curves".* is not valid JSON/);
    await expectRefusal(withMetadata(s, (m) => (m.step = '3')), /its curves are not 3 steps' losses/);
    const noSums = snapshot();
    noSums.work.tensors.delete('igia.sums');
    await expectRefusal(withMetadata(noSums, (m) => (m.work_tensors = JSON.stringify([{ name: 'igia.sums', length: 6 }]))), /tensor "work\.igia\.sums" is missing/);
    const wide = snapshot();
    await expectRefusal(withMetadata(wide, (m) => (m.adapters = JSON.stringify([{ name: 'model.layers.0.self_attn.q_proj', inFeatures: 9, outFeatures: 8 }, { name: 'model.layers.0.mlp.down_proj', inFeatures: 16, outFeatures: 8 }]))),
      /tensor "adapter\.model\.layers\.0\.self_attn\.q_proj\.lora_A" is F32 \[2, 8\]; it should be F32 with 18 values/);
    const diverged = snapshot();
    diverged.adapters[1].B[3] = NaN;
    await expectRefusal(await bytesOf(diverged), /adapter\.model\.layers\.0\.mlp\.down_proj\.lora_B.* NaN/);
  });

  it('refuse to continue another kind of run, model, data or settings, naming which differs', () => {
    const s = { ...snapshot(), source: 'x.resume.safetensors' };
    const run = { kind: s.kind, modelFingerprint: s.modelFingerprint, dataFingerprint: s.dataFingerprint, settings: s.settings };
    expect(() => checkSnapshotMatches(s, run)).not.toThrow();
    // The steps and the learning rate may change (more steps; a lower lr after a NaN).
    expect(() => checkSnapshotMatches(s, { ...run, settings: { ...settings, steps: 9, lr: 1e-5 } })).not.toThrow();
    const refused = (other: Partial<typeof run>) => {
      try {
        checkSnapshotMatches(s, { ...run, ...other });
      } catch (e) {
        expect((e as GradPruneError).code).toBe('input');
        return (e as Error).message;
      }
      return null;
    };
    expect(refused({ kind: 'recovery' })).toMatch(/^x\.resume\.safetensors cannot be continued here: it is a scoring run's snapshot, not a recovery run's/);
    expect(refused({ modelFingerprint: 'other' })).toMatch(/another model/);
    expect(refused({ dataFingerprint: 'other' })).toMatch(/other data/);
    expect(refused({ settings: { ...settings, rank: 4 } })).toMatch(/its setting rank was 2, this run's is 4\. Resume with rank 2 \(only steps, epochs, lr, maxGpuMemory may change\)/);
    expect(refused({ settings: { ...settings, weights: 'f16' } })).toMatch(/its setting weights was "f32", this run's is "f16"/);
    expect(refused({ settings: { ...settings, steps: 1 } })).toMatch(/it has done 2 steps, more than this run's 1/);
  });

  it('fingerprint tokenized data by its ids, masks and order', async () => {
    const rows = [{ inputIds: [1, 2, 3], lossMask: [0, 1, 1] }, { inputIds: [4, 5], lossMask: [1, 1] }];
    const base = await dataFingerprint(rows, 0);
    expect(await dataFingerprint(rows.map((r) => ({ ...r })), 0)).toBe(base);
    expect(await dataFingerprint([rows[1], rows[0]], 0)).not.toBe(base);
    expect(await dataFingerprint([{ ...rows[0], lossMask: [1, 1, 1] }, rows[1]], 0)).not.toBe(base);
    expect(await dataFingerprint(rows, 2)).not.toBe(base);
  });
});
