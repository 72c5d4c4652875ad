// The studio's "save into a folder" (File System Access API) keeps a person's files: an existing folder is refused
// unless overwrite; where folders can be moved the export is built under a temporary name and moved into place
// when complete (an interrupted one leaves the previous folder as it was); where they cannot, files still appear
// only complete (swap-file writables) and a failed export removes its folder.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DirectorySink, type DirectoryHandleLike, type FileHandleLike } from './fs-access';
import { withSink, writeBytesFile, writeFolderTo } from './sink';

interface FakeDir extends DirectoryHandleLike {
  files: Map<string, Uint8Array>;
  dirs: Map<string, FakeDir>;
}

/** An in-memory directory as Chromium gives it: writables are swap files (the file changes only on close). */
function fakeDirectory(name: string, opts: { movable: boolean }, parent?: FakeDir): FakeDir {
  const notFound = () => Object.assign(new Error('not found'), { name: 'NotFoundError' });
  const dir: FakeDir = {
    name,
    files: new Map(),
    dirs: new Map(),
    async getDirectoryHandle(n, o) {
      if (!dir.dirs.has(n)) {
        if (!o?.create) throw notFound();
        dir.dirs.set(n, fakeDirectory(n, opts, dir));
      }
      return dir.dirs.get(n)!;
    },
    async getFileHandle(n, o): Promise<FileHandleLike> {
      if (!dir.files.has(n)) {
        if (!o?.create) throw notFound();
        dir.files.set(n, new Uint8Array(0));
      }
      return {
        name: n,
        async createWritable() {
          const parts: Uint8Array[] = [];
          return {
            write: async (b: Uint8Array) => void parts.push(b.slice()),
            close: async () => void dir.files.set(n, new Uint8Array(Buffer.concat(parts))),
            abort: async () => void (parts.length = 0),
          };
        },
      };
    },
    async removeEntry(n) {
      if (!dir.files.delete(n) && !dir.dirs.delete(n)) throw notFound();
    },
  };
  if (opts.movable && parent) {
    dir.move = async (newName: string) => {
      if (parent.dirs.has(newName)) throw Object.assign(new Error('exists'), { name: 'InvalidModificationError' });
      parent.dirs.delete((dir as { name: string }).name);
      (dir as { name: string }).name = newName;
      parent.dirs.set(newName, dir);
    };
  }
  return dir;
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const files = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([k, v]) => [k, new Blob([v])]));

/** Dies after one complete file and half of another. */
async function interrupted(sink: DirectorySink): Promise<void> {
  await withSink(sink, async () => {
    await writeBytesFile(sink, 'config.json', new TextEncoder().encode('new config'));
    const f = await sink.createFile('model.safetensors');
    await f.write(new TextEncoder().encode('half'));
    throw new Error('the GPU was lost');
  });
}

describe.each([
  ['folders can be moved (Chromium: OPFS, recent local folders)', true],
  ['folders cannot be moved', false],
])('DirectorySink, %s', (_, movable) => {
  const picked = () => fakeDirectory('Downloads', { movable });

  it('writes <picked>/<folder>/…; a failed export leaves nothing in the picked folder', async () => {
    const root = picked();
    await expect(interrupted(new DirectorySink(root, 'm-pruned'))).rejects.toThrow(/GPU was lost/);
    expect([...root.dirs.keys()]).toEqual([]);
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files({ 'config.json': '{}', 'adapter/a.json': 'x' }));
    expect([...root.dirs.keys()]).toEqual(['m-pruned']);
    const folder = root.dirs.get('m-pruned')!;
    expect(text(folder.files.get('config.json'))).toBe('{}');
    expect(text(folder.dirs.get('adapter')!.files.get('a.json'))).toBe('x');
  });

  it('refuses an existing folder of that name unless overwrite, which replaces it', async () => {
    const root = picked();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files({ 'config.json': 'old', 'model.safetensors': 'old weights' }));
    const err = await writeFolderTo(new DirectorySink(root, 'm-pruned'), files({ 'config.json': 'new' })).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toBe('The folder you picked already holds m-pruned: the download does not overwrite it. Pick another folder, or move or delete m-pruned first.');
    expect(text(root.dirs.get('m-pruned')!.files.get('config.json'))).toBe('old');
    await writeFolderTo(new DirectorySink(root, 'm-pruned', { overwrite: true }), files({ 'config.json': 'new', 'model-00001-of-00002.safetensors': 'n' }));
    expect([...root.dirs.keys()]).toEqual(['m-pruned']);
    expect([...root.dirs.get('m-pruned')!.files.keys()].sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors']);
    expect(text(root.dirs.get('m-pruned')!.files.get('config.json'))).toBe('new');
  });

  it(movable ? 'an interrupted overwrite leaves the previous folder as it was' : 'an interrupted overwrite has removed the previous folder (nothing to move aside), and leaves nothing', async () => {
    const root = picked();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files({ 'config.json': 'old' }));
    await expect(interrupted(new DirectorySink(root, 'm-pruned', { overwrite: true }))).rejects.toThrow(/GPU was lost/);
    if (movable) {
      expect([...root.dirs.keys()]).toEqual(['m-pruned']);
      expect(text(root.dirs.get('m-pruned')!.files.get('config.json'))).toBe('old');
    } else {
      expect([...root.dirs.keys()]).toEqual([]);
    }
  });
});
