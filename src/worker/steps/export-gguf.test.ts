// The studio's GGUF download, in the worker: the sizes shown before anything is written are the sizes written, and
// the file in memory is the CLI's file (all but general.name).

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { cli } from '../../testing/cli';
import { fixtureDir } from '../../testing/paths';
import type { StepContext } from '../session';
import { exportGguf, ggufSizes } from './export-gguf';

/** A step context whose session holds `pruned` (no recovery run). */
const contextWith = (pruned: unknown): StepContext => ({ id: 1, session: { recovery: null, needPruned: () => pruned }, progress: () => undefined }) as unknown as StepContext;

describe('GGUF in the worker', () => {
  it('offers f16 and q8_0 with the sizes that are then written, the same bytes as `gradprune export`', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')), 'tiny-qwen2-gradprune-5L');
    const ctx = contextWith({ checkpoint: ckpt });
    const sizes = await ggufSizes(ctx, { type: 'ggufSizes' });
    expect(sizes.refused).toBeNull();
    expect(sizes.options.map((o) => [o.dtype, o.fileName])).toEqual([
      ['f16', 'tiny-qwen2-gradprune-5L-f16.gguf'],
      ['q8_0', 'tiny-qwen2-gradprune-5L-q8_0.gguf'],
    ]);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-gguf-worker-'));
    try {
      for (const option of sizes.options) {
        const written = await exportGguf(ctx, { type: 'exportGguf', dtype: option.dtype });
        expect(written.blob.size).toBe(option.bytes);
        const out = path.join(tmp, option.fileName);
        expect((await cli('export', fixtureDir('tiny-qwen2'), '--format', 'gguf', '--dtype', option.dtype, '--out', out)).code).toBe(0);
        const cliBytes = new Uint8Array(await readFile(out));
        // general.name differs (the folder's name vs the studio's); everything after the metadata is the same.
        expect(new Uint8Array(await written.blob.arrayBuffer()).subarray(-100_000)).toEqual(cliBytes.subarray(-100_000));
        expect(Math.abs(cliBytes.byteLength - option.bytes)).toBeLessThanOrEqual(64);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
