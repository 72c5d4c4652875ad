// The studio's "save into a folder" (File System Access API) keeps a person's files: an existing folder is refused
// unless overwrite (the page asks first, from existingFolderFiles), and an overwrite leaves the previous files as
// they were until every new file is complete — whatever the browser can rename: folders (the export is built under
// a temporary name and moved into place), only files (each written under a temporary name beside the old one and
// renamed at the end), or nothing (the export goes into a fresh folder beside the old one, and says so).
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DirectorySink, existingFolderFiles, type DirectoryHandleLike, type FileHandleLike } from './fs-access';
import { withSink, writeBytesFile, writeFolderTo } from './sink';

interface FakeDir extends DirectoryHandleLike {
  files: Map<string, Uint8Array>;
  dirs: Map<string, FakeDir>;
}

/** What the fake browser can rename: folders, files (FileSystemHandle.move), both or neither. */
interface Moves {
  folders: boolean;
  files: boolean;
}

const domError = (name: string) => Object.assign(new Error(name), { name });

/** An in-memory directory as Chromium gives it: writables are swap files (the file changes only on close); a move onto an existing name fails. */
function fakeDirectory(name: string, moves: Moves, parent?: FakeDir): FakeDir {
  const fileHandle = (n: string): FileHandleLike => {
    const handle: FileHandleLike & { name: string } = {
      kind: 'file',
      name: n,
      async createWritable() {
        const parts: Uint8Array[] = [];
        return {
          write: async (b: Uint8Array) => void parts.push(b.slice()),
          close: async () => void dir.files.set(handle.name, new Uint8Array(Buffer.concat(parts))),
          abort: async () => void (parts.length = 0),
        };
      },
    };
    if (moves.files) {
      handle.move = async (newName: string) => {
        if (dir.files.has(newName)) throw domError('InvalidModificationError');
        dir.files.set(newName, dir.files.get(handle.name)!);
        dir.files.delete(handle.name);
        handle.name = newName;
      };
    }
    return handle;
  };
  const dir: FakeDir = {
    kind: 'directory',
    name,
    files: new Map(),
    dirs: new Map(),
    async getDirectoryHandle(n, o) {
      if (!dir.dirs.has(n)) {
        if (dir.files.has(n)) throw domError('TypeMismatchError');
        if (!o?.create) throw domError('NotFoundError');
        dir.dirs.set(n, fakeDirectory(n, moves, dir));
      }
      return dir.dirs.get(n)!;
    },
    async getFileHandle(n, o) {
      if (!dir.files.has(n)) {
        if (dir.dirs.has(n)) throw domError('TypeMismatchError');
        if (!o?.create) throw domError('NotFoundError');
        dir.files.set(n, new Uint8Array(0));
      }
      return fileHandle(n);
    },
    async removeEntry(n, o) {
      if (dir.dirs.get(n)?.files.size && !o?.recursive) throw domError('InvalidModificationError');
      if (!dir.files.delete(n) && !dir.dirs.delete(n)) throw domError('NotFoundError');
    },
    async *values() {
      for (const d of dir.dirs.values()) yield d;
      for (const f of dir.files.keys()) yield fileHandle(f);
    },
  };
  if (moves.folders && parent) {
    dir.move = async (newName: string) => {
      if (parent.dirs.has(newName)) throw domError('InvalidModificationError');
      parent.dirs.delete((dir as { name: string }).name);
      (dir as { name: string }).name = newName;
      parent.dirs.set(newName, dir);
    };
  }
  return dir;
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const files = (entries: Record<string, string>) => new Map(Object.entries(entries).map(([k, v]) => [k, new Blob([v])]));

/** Every file under `dir` as path → text. */
function tree(dir: FakeDir, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [n, b] of dir.files) out[prefix + n] = text(b);
  for (const [n, d] of dir.dirs) Object.assign(out, tree(d, `${prefix}${n}/`));
  return out;
}

/** Dies after one complete file and half of another. */
async function interrupted(sink: DirectorySink): Promise<void> {
  await withSink(sink, async () => {
    await writeBytesFile(sink, 'config.json', new TextEncoder().encode('new config'));
    const f = await sink.createFile('model.safetensors');
    await f.write(new TextEncoder().encode('half'));
    throw new Error('the GPU was lost');
  });
}

const OLD = { 'config.json': 'old', 'model.safetensors': 'old weights', 'adapter/adapter_config.json': 'old adapter' };

describe.each([
  ['folders can be moved (Chromium: OPFS, recent local folders)', { folders: true, files: true }],
  ['only files can be moved', { folders: false, files: true }],
  ['nothing can be moved', { folders: false, files: false }],
] as const)('DirectorySink, %s', (_, moves) => {
  const picked = () => fakeDirectory('Downloads', moves);

  it('writes <picked>/<folder>/…; a failed export leaves nothing in the picked folder', async () => {
    const root = picked();
    await expect(interrupted(new DirectorySink(root, 'm-pruned'))).rejects.toThrow(/GPU was lost/);
    expect(tree(root)).toEqual({});
    const sink = new DirectorySink(root, 'm-pruned');
    await writeFolderTo(sink, files({ 'config.json': '{}', 'adapter/a.json': 'x' }));
    expect(tree(root)).toEqual({ 'm-pruned/config.json': '{}', 'm-pruned/adapter/a.json': 'x' });
    expect(sink.savedFolder).toBe('m-pruned');
    expect(sink.note).toBeNull();
  });

  it('refuses an existing folder of that name unless overwrite', async () => {
    const root = picked();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files(OLD));
    const err = await writeFolderTo(new DirectorySink(root, 'm-pruned'), files({ 'config.json': 'new' })).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toBe('The folder you picked already holds m-pruned: the download does not overwrite it. Pick another folder, or move or delete m-pruned first.');
    expect(tree(root.dirs.get('m-pruned')!)).toEqual(OLD);
  });

  it(moves.files ? 'overwrite replaces the old checkpoint, its files the new one has not included' : 'overwrite writes beside the old folder, which it leaves untouched, and says so', async () => {
    const root = picked();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files(OLD));
    const sink = new DirectorySink(root, 'm-pruned', { overwrite: true });
    const fresh = { 'config.json': 'new', 'model-00001-of-00002.safetensors': 'n1', 'model-00002-of-00002.safetensors': 'n2', 'model.safetensors.index.json': '{}' };
    await writeFolderTo(sink, files(fresh));
    if (moves.files) {
      expect([...root.dirs.keys()]).toEqual(['m-pruned']);
      expect(tree(root.dirs.get('m-pruned')!)).toEqual(fresh); // no stale model.safetensors beside the new index, no old adapter/
      expect(sink.savedFolder).toBe('m-pruned');
      expect(sink.note).toBeNull();
    } else {
      expect(tree(root.dirs.get('m-pruned')!)).toEqual(OLD);
      expect(tree(root.dirs.get('m-pruned-2')!)).toEqual(fresh);
      expect(sink.savedFolder).toBe('m-pruned-2');
      expect(sink.note).toBe('This browser cannot rename files in the folder you picked, so m-pruned was left as it was and the new checkpoint is in m-pruned-2.');
    }
  });

  it('an interrupted overwrite leaves the previous files as they were, and no temporary file', async () => {
    const root = picked();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files(OLD));
    await expect(interrupted(new DirectorySink(root, 'm-pruned', { overwrite: true }))).rejects.toThrow(/GPU was lost/);
    expect(tree(root)).toEqual(Object.fromEntries(Object.entries(OLD).map(([k, v]) => [`m-pruned/${k}`, v])));
  });
});

describe('existingFolderFiles (what the page asks about before replacing)', () => {
  it('is null without such a folder, and lists the files of one, subfolders included', async () => {
    const root = fakeDirectory('Downloads', { folders: true, files: true });
    expect(await existingFolderFiles(root, 'm-pruned')).toBeNull();
    await writeFolderTo(new DirectorySink(root, 'm-pruned'), files(OLD));
    expect(await existingFolderFiles(root, 'm-pruned')).toEqual(['adapter/adapter_config.json', 'config.json', 'model.safetensors']);
    await root.getDirectoryHandle('empty', { create: true });
    expect(await existingFolderFiles(root, 'empty')).toEqual([]);
  });
});
