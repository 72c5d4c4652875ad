// The File System Access API as CheckpointSinks, typed structurally so the engine stays DOM-free: the studio's page
// picks a folder (showDirectoryPicker) or a file (showSaveFilePicker) and hands the handle to the worker through
// postMessage; the worker streams the export into it.
//
// A folder, `<picked>/<folderName>/`, never overwritten unasked: an existing one is refused unless `overwrite`.
// What the API guarantees, and what this sink makes of it:
// - Every file: createWritable() writes a swap file that replaces the file only on close(); abort() discards it.
//   So no file is ever half-written under its name, and an interrupted write leaves the previous file as it was.
// - The folder as a whole: where handles can be moved (FileSystemHandle.move, Chromium: the origin-private file
//   system, and local folders in recent versions; probed before writing), the export is built in
//   `<folderName>.tmp-<random>` and moved to its name when complete (an existing folder, with overwrite, is moved
//   aside first and removed after). A tab killed midway leaves at most the temporary folder, never a partial
//   `<folderName>`. Where nothing can be moved, files go straight into a new `<folderName>` (with overwrite, the old
//   one is removed first): each file is still complete or absent and abort removes the folder, but a tab killed
//   midway can leave a folder with some of the files (the API gives no atomic folder rename to do better).

import { GradPruneError } from '../errors';
import { ZipStreamSink, type ByteTarget } from './zip';
import type { CheckpointSink, SinkFile } from './sink';

/** FileSystemWritableFileStream, as far as the export uses it. */
export interface WritableFileLike {
  write(data: Uint8Array<ArrayBuffer>): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

/** FileSystemFileHandle, as far as the export uses it. */
export interface FileHandleLike {
  readonly name: string;
  createWritable(options?: { keepExistingData?: boolean }): Promise<WritableFileLike>;
}

/** FileSystemDirectoryHandle, as far as the export uses it (`move` where the browser has it). */
export interface DirectoryHandleLike {
  readonly name: string;
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandleLike>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  /** Rename within the same parent. */
  move?(newName: string): Promise<void>;
}

const notFound = (e: unknown) => (e as { name?: string }).name === 'NotFoundError' || (e as { name?: string }).name === 'TypeMismatchError';

async function exists(dir: DirectoryHandleLike, name: string, kind: 'file' | 'directory'): Promise<boolean> {
  try {
    await (kind === 'file' ? dir.getFileHandle(name) : dir.getDirectoryHandle(name));
    return true;
  } catch (e) {
    if (notFound(e)) return false;
    throw e;
  }
}

const randomTag = () => Math.random().toString(36).slice(2, 10);

/** Whether folders in `parent` can be renamed: a probe folder is made, moved and removed. */
async function canMoveFolders(parent: DirectoryHandleLike): Promise<boolean> {
  const name = `.gradprune-probe-${randomTag()}`;
  const probe = await parent.getDirectoryHandle(name, { create: true });
  let at = name;
  try {
    if (typeof probe.move !== 'function') return false;
    await probe.move(`${name}-moved`);
    at = `${name}-moved`;
    return true;
  } catch {
    return false;
  } finally {
    await parent.removeEntry(at, { recursive: true }).catch(() => undefined);
  }
}

export interface DirectorySinkOptions {
  /** Replace an existing `<folderName>` (once the new one is complete, where folders can be moved). */
  overwrite?: boolean;
}

/** The export as `<parent>/<folderName>/…` through the File System Access API. */
export class DirectorySink implements CheckpointSink {
  private folder: DirectoryHandleLike | null = null;
  /** The folder being written: a temporary name when it can be moved into place, else folderName itself. */
  private folderAt = '';
  private staged = false;
  private open: WritableFileLike | null = null;

  constructor(
    private readonly parent: DirectoryHandleLike,
    readonly folderName: string,
    private readonly opts: DirectorySinkOptions = {},
  ) {}

  private async root(): Promise<DirectoryHandleLike> {
    if (this.folder) return this.folder;
    const present = await exists(this.parent, this.folderName, 'directory');
    if ((present || (await exists(this.parent, this.folderName, 'file'))) && !this.opts.overwrite) {
      throw new GradPruneError('input', `The folder you picked already holds ${this.folderName}: the download does not overwrite it.`, {
        subject: this.folderName,
        hint: `Pick another folder, or move or delete ${this.folderName} first.`,
      });
    }
    this.staged = await canMoveFolders(this.parent);
    // Without moves, an overwrite cannot wait for the new folder: the old one goes first (its files mixed with the
    // new ones would be worse: a stale model.safetensors beside a new sharded index is what loaders would take).
    if (present && !this.staged) await this.parent.removeEntry(this.folderName, { recursive: true });
    this.folderAt = this.staged ? `${this.folderName}.tmp-${randomTag()}` : this.folderName;
    this.folder = await this.parent.getDirectoryHandle(this.folderAt, { create: true });
    return this.folder;
  }

  async createFile(name: string): Promise<SinkFile> {
    const parts = name.split('/');
    let dir = await this.root();
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
    const base = parts.at(-1)!;
    const handle = await dir.getFileHandle(base, { create: true });
    const writable = await handle.createWritable({ keepExistingData: false });
    this.open = writable;
    return {
      write: (bytes) => writable.write(bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice()),
      close: async () => {
        this.open = null;
        await writable.close();
      },
    };
  }

  async commit(): Promise<void> {
    const folder = await this.root();
    if (!this.staged) return;
    let aside: string | null = null;
    if (await exists(this.parent, this.folderName, 'directory')) {
      aside = `${this.folderName}.old-${randomTag()}`;
      await (await this.parent.getDirectoryHandle(this.folderName)).move!(aside);
    } else if (await exists(this.parent, this.folderName, 'file')) {
      throw new GradPruneError('input', `The folder you picked holds a file named ${this.folderName}.`, { subject: this.folderName, hint: `Move or delete it first.` });
    }
    try {
      await folder.move!(this.folderName);
    } catch (e) {
      if (aside) await (await this.parent.getDirectoryHandle(aside)).move!(this.folderName).catch(() => undefined);
      throw e;
    }
    if (aside) await this.parent.removeEntry(aside, { recursive: true });
  }

  async abort(reason?: unknown): Promise<void> {
    await this.open?.abort(reason).catch(() => undefined);
    this.open = null;
    if (this.folder) await this.parent.removeEntry(this.folderAt, { recursive: true }).catch(() => undefined);
  }
}

/** One zip streamed into a picked file (showSaveFilePicker's handle); abort() leaves the file as it was. */
export async function zipFileSink(handle: FileHandleLike, folderName: string): Promise<ZipStreamSink> {
  const writable = await handle.createWritable({ keepExistingData: false });
  const target: ByteTarget = { write: (b) => writable.write(b), close: () => writable.close(), abort: (r) => writable.abort(r) };
  return new ZipStreamSink(target, folderName);
}
