// The worker's run snapshots in an origin-private file system (an in-memory stand-in with OPFS's commit-on-close
// writes): a snapshot comes back as written, one per key, a write cut short leaves the previous one whole, removal
// forgets it, and without OPFS nothing is kept.
import { describe, expect, it } from 'vitest';
import { resolveScoringSettings } from '../nn/run-settings';
import type { RunSnapshot } from '../nn/run-snapshot';
import { RunStore, type RunKey } from './run-store';

/** Files by path; a writable commits its chunks on close only (as createWritable's swap file does). */
function memoryOpfs(failWrites: { after: number | null } = { after: null }) {
  const files = new Map<string, Blob>();
  const dir = (prefix: string): FileSystemDirectoryHandle =>
    ({
      getDirectoryHandle: async (name: string, opts?: { create?: boolean }) => {
        const path = `${prefix}${name}/`;
        if (!opts?.create && ![...files.keys()].some((k) => k.startsWith(path)) && !files.has(path)) throw Object.assign(new Error('none'), { name: 'NotFoundError' });
        if (opts?.create && !files.has(path)) files.set(path, new Blob([]));
        return dir(path);
      },
      getFileHandle: async (name: string, opts?: { create?: boolean }) => {
        const path = prefix + name;
        if (!files.has(path)) {
          if (!opts?.create) throw Object.assign(new Error('none'), { name: 'NotFoundError' });
          files.set(path, new Blob([]));
        }
        return {
          getFile: async () => new File([files.get(path)!], name),
          createWritable: async () => {
            const chunks: BlobPart[] = [];
            let written = 0;
            return new WritableStream<Uint8Array>({
              write(chunk) {
                written += chunk.byteLength;
                if (failWrites.after !== null && written > failWrites.after) throw new Error('quota exceeded');
                chunks.push(chunk as Uint8Array<ArrayBuffer>);
              },
              close() {
                files.set(path, new Blob(chunks));
              },
            });
          },
        };
      },
      removeEntry: async (name: string) => {
        if (!files.delete(prefix + name)) throw Object.assign(new Error('none'), { name: 'NotFoundError' });
      },
    }) as unknown as FileSystemDirectoryHandle;
  return { files, root: dir('') };
}

const settings = { ...resolveScoringSettings({ steps: 4, rank: 2 }), weights: 'f32' as const };
function snapshot(step: number): RunSnapshot {
  const v = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(seed + i) * 1e-2);
  return {
    kind: 'scoring', step, modelFingerprint: 'm', dataFingerprint: 'd', settings,
    adapters: [{ name: 'model.layers.0.self_attn.q_proj', inFeatures: 4, outFeatures: 4, A: v(8, step), B: v(8, 1), mA: v(8, 2), vA: v(8, 3).map(Math.abs), mB: v(8, 4), vB: v(8, 5).map(Math.abs) }],
    curves: { losses: Array.from({ length: step }, (_, i) => 3 - i / 8), lrs: Array.from({ length: step }, () => 1e-4), gradNorms: Array.from({ length: step }, () => 1), tokens: 10 * step, targetTokens: 5 * step, elapsedSeconds: step },
    work: { tensors: new Map([['igia.sums', v(3, 7)]]), values: {} },
  };
}
const key: RunKey = { kind: 'scoring', model: 'model-fp', dataset: 'data-fp' };
const info = (step: number) => ({ kind: 'scoring' as const, step, steps: 4, modelName: 'tiny', datasetName: 'arc.jsonl', savedAt: 1 });

describe('run store (OPFS)', () => {
  it('keeps one snapshot per key, as written, with what the page is told; removal forgets it', async () => {
    const opfs = memoryOpfs();
    const store = new RunStore(async () => opfs.root);
    expect(await store.find(key)).toBeNull();
    await store.save(key, snapshot(1), { info: info(1), settings: { steps: 4 } });
    await store.save(key, snapshot(2), { info: info(2), settings: { steps: 4 } });
    expect(await store.find(key)).toEqual({ info: info(2), settings: { steps: 4 } });
    const back = await store.load(key);
    expect(back.step).toBe(2);
    expect(back.adapters[0].A).toEqual(snapshot(2).adapters[0].A);
    expect(back.curves.losses).toEqual([3, 3 - 1 / 8]);
    expect(await store.find({ ...key, dataset: 'other' })).toBeNull();
    expect(await store.find({ ...key, kind: 'recovery' })).toBeNull();
    await store.remove(key);
    expect(await store.find(key)).toBeNull();
    await expect(store.load(key)).rejects.toThrow(/no interrupted scoring run of this model and dataset/);
    await store.remove(key); // removing twice is fine
  });

  it('a write cut short leaves the previous snapshot whole', async () => {
    const fail = { after: null as number | null };
    const opfs = memoryOpfs(fail);
    const store = new RunStore(async () => opfs.root);
    await store.save(key, snapshot(1), { info: info(1), settings: {} });
    fail.after = 64; // the next snapshot breaks off after 64 bytes
    await expect(store.save(key, snapshot(2), { info: info(2), settings: {} })).rejects.toThrow(/quota/);
    expect((await store.find(key))?.info.step).toBe(1);
    expect((await store.load(key)).step).toBe(1);
  });

  it('without OPFS nothing is kept and nothing is found', async () => {
    const store = new RunStore(async () => null);
    await store.save(key, snapshot(1), { info: info(1), settings: {} });
    expect(await store.find(key)).toBeNull();
    await store.remove(key);
  });
});
