// Writing outputs on disk without losing anything: a complete output appears under its name in one rename, an
// interrupted one leaves the previous output exactly as it was and nothing half-written beside it, an existing
// output is replaced only when asked, and a folder that cannot take files fails at once (never hangs).
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { checkOutput, makeFolders, writeFilesReplacing } from './node-output';
import { FolderSink } from './node-sink';
import { withSink, writeBytesFile, writeFolderTo, type CheckpointSink } from './sink';

const temps: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gradprune-output-'));
  temps.push(d);
  return d;
};
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const listing = async (dir: string) => (await readdir(dir)).sort();

/** A write that dies after its first file and part of the second (a sink that throws mid-write). */
async function interruptedExport(sink: CheckpointSink): Promise<void> {
  await withSink(sink, async () => {
    await writeBytesFile(sink, 'config.json', enc('{"new":true}'));
    const file = await sink.createFile('model.safetensors');
    await file.write(enc('half of the new weights'));
    throw new Error('the GPU was lost');
  });
}

describe('FolderSink into an existing folder', () => {
  async function previousOutput() {
    const dir = await tmp();
    const out = path.join(dir, 'pruned');
    await mkdir(out);
    await writeFile(path.join(out, 'config.json'), 'old config');
    await writeFile(path.join(out, 'model-00001-of-00002.safetensors'), 'old shard');
    return { dir, out };
  }

  it('is refused without overwrite, and left as it was', async () => {
    const { dir, out } = await previousOutput();
    const err = await writeFolderTo(new FolderSink(out), new Map([['config.json', new Blob(['new'])]])).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toBe(`Cannot write --out ${out}: ${out} already exists (EEXIST). Give --out a new name, or add --overwrite to replace it.`);
    expect(await listing(out)).toEqual(['config.json', 'model-00001-of-00002.safetensors']);
    expect(await readFile(path.join(out, 'config.json'), 'utf8')).toBe('old config');
    expect(await listing(dir)).toEqual(['pruned']);
  });

  it('with overwrite: replaced as a whole once the new one is complete (no stale shard, nothing left beside it)', async () => {
    const { dir, out } = await previousOutput();
    const sink = new FolderSink(out, { overwrite: true });
    await writeFolderTo(sink, new Map([['config.json', new Blob(['new config'])], ['model.safetensors', new Blob(['new weights'])]]));
    expect(await listing(out)).toEqual(['config.json', 'model.safetensors']);
    expect(await readFile(path.join(out, 'config.json'), 'utf8')).toBe('new config');
    expect(await listing(dir)).toEqual(['pruned']);
    expect(sink.notes).toEqual([`replaced the previous ${out}`]);
  });

  it('with overwrite, interrupted mid-write: the previous folder is intact and no temporary is left', async () => {
    const { dir, out } = await previousOutput();
    await expect(interruptedExport(new FolderSink(out, { overwrite: true }))).rejects.toThrow(/GPU was lost/);
    expect(await listing(dir)).toEqual(['pruned']);
    expect(await listing(out)).toEqual(['config.json', 'model-00001-of-00002.safetensors']);
    expect(await readFile(path.join(out, 'config.json'), 'utf8')).toBe('old config');
  });

  it('an empty folder is simply filled; an interrupted export into new folders removes the folders it made', async () => {
    const dir = await tmp();
    await mkdir(path.join(dir, 'empty'));
    await writeFolderTo(new FolderSink(path.join(dir, 'empty')), new Map([['config.json', new Blob(['{}'])]]));
    expect(await listing(path.join(dir, 'empty'))).toEqual(['config.json']);
    await expect(interruptedExport(new FolderSink(path.join(dir, 'a', 'b', 'out')))).rejects.toThrow(/GPU was lost/);
    expect(await listing(dir)).toEqual(['empty']);
  });
});

describe('writeFilesReplacing', () => {
  async function* dying(): AsyncIterable<Uint8Array> {
    yield enc('{"layerScores": [1, 2');
    throw new Error('stopped mid-write');
  }

  it('interrupted mid-write: the previous file is intact and there is no file under the final name', async () => {
    const dir = await tmp();
    const previous = path.join(dir, 'scores.json');
    await writeFile(previous, 'previous scores');
    await expect(writeFilesReplacing([{ target: previous, content: dying }], { overwrite: true })).rejects.toThrow(/stopped mid-write/);
    expect(await listing(dir)).toEqual(['scores.json']);
    expect(await readFile(previous, 'utf8')).toBe('previous scores');
    const fresh = path.join(dir, 'new', 'scores.json');
    await expect(writeFilesReplacing([{ target: fresh, content: dying }])).rejects.toThrow(/stopped mid-write/);
    expect(await listing(dir)).toEqual(['scores.json']);
  });

  it('a pair is renamed into place only when both are complete', async () => {
    const dir = await tmp();
    const [a, b] = [path.join(dir, 'scores.igia.safetensors'), path.join(dir, 'scores.json')];
    await writeFile(a, 'old igia');
    await writeFile(b, 'old scores');
    await expect(writeFilesReplacing([{ target: a, content: enc('new igia') }, { target: b, content: dying }], { overwrite: true })).rejects.toThrow();
    expect([await readFile(a, 'utf8'), await readFile(b, 'utf8')]).toEqual(['old igia', 'old scores']);
    await writeFilesReplacing([{ target: a, content: enc('new igia') }, { target: b, content: 'new scores' }], { overwrite: true });
    expect([await readFile(a, 'utf8'), await readFile(b, 'utf8')]).toEqual(['new igia', 'new scores']);
    expect(await listing(dir)).toEqual(['scores.igia.safetensors', 'scores.json']);
  });

  it('refuses to replace an existing file without overwrite', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'scores.json');
    await writeFile(file, 'mine');
    await expect(writeFilesReplacing([{ target: file, content: 'new' }])).rejects.toThrow(/already exists \(EEXIST\)\. Give --out a new name, or add --overwrite/);
    expect(await readFile(file, 'utf8')).toBe('mine');
    expect(await listing(dir)).toEqual(['scores.json']);
  });
});

describe('a folder that takes no files fails at once', () => {
  // fs.mkdir({ recursive: true }) loops forever there: /proc answers ENOENT for a new entry under an existing folder.
  it('under /proc: makeFolders and checkOutput answer, with the path and what to do', async () => {
    await expect(makeFolders('/proc/gradprune-out/x')).rejects.toMatchObject({ code: 'ENOENT' });
    const err = await checkOutput('/proc/gradprune-out/scores.json', 'file').catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('input');
    expect(err.message).toBe('Cannot write --out /proc/gradprune-out/scores.json: /proc does not take new files (ENOENT). Give --out a path in a folder you can write to.');
  }, 10_000);
});
