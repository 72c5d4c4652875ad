// The File System Access API as CheckpointSinks, typed structurally so the engine stays DOM-free: the studio's page
// picks a folder (showDirectoryPicker) or a file (showSaveFilePicker) and hands the handle to the worker through
// postMessage; the worker streams the export into it.
//
// A folder: files are written into `<picked>/<folderName>/`; each file's createWritable() writes a swap file that
// replaces the file only on close(), so no file is ever half-written under its name. abort() discards the open
// writable and removes what this export created (the whole folder when it made it). The API cannot rename a
// folder, so a folder export that dies midway can leave the complete files it had finished (never partial ones).

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

/** FileSystemDirectoryHandle, as far as the export uses it. */
export interface DirectoryHandleLike {
  readonly name: string;
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandleLike>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
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

/** The export as `<parent>/<folderName>/…` through the File System Access API. */
export class DirectorySink implements CheckpointSink {
  private folder: DirectoryHandleLike | null = null;
  private createdFolder = false;
  /** Files this export created (did not exist before), for abort. */
  private readonly created: { dir: DirectoryHandleLike; name: string }[] = [];
  private open: WritableFileLike | null = null;

  constructor(
    private readonly parent: DirectoryHandleLike,
    readonly folderName: string,
  ) {}

  private async root(): Promise<DirectoryHandleLike> {
    if (!this.folder) {
      this.createdFolder = !(await exists(this.parent, this.folderName, 'directory'));
      this.folder = await this.parent.getDirectoryHandle(this.folderName, { create: true });
    }
    return this.folder;
  }

  async createFile(name: string): Promise<SinkFile> {
    const parts = name.split('/');
    let dir = await this.root();
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
    const base = parts.at(-1)!;
    const isNew = !(await exists(dir, base, 'file'));
    const handle = await dir.getFileHandle(base, { create: true });
    if (isNew) this.created.push({ dir, name: base });
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
    await this.root();
  }

  async abort(reason?: unknown): Promise<void> {
    await this.open?.abort(reason).catch(() => undefined);
    this.open = null;
    if (this.createdFolder) {
      await this.parent.removeEntry(this.folderName, { recursive: true }).catch(() => undefined);
      return;
    }
    for (const { dir, name } of this.created.reverse()) await dir.removeEntry(name).catch(() => undefined);
  }
}

/** One zip streamed into a picked file (showSaveFilePicker's handle); abort() leaves the file as it was. */
export async function zipFileSink(handle: FileHandleLike, folderName: string): Promise<ZipStreamSink> {
  const writable = await handle.createWritable({ keepExistingData: false });
  const target: ByteTarget = { write: (b) => writable.write(b), close: () => writable.close(), abort: (r) => writable.abort(r) };
  return new ZipStreamSink(target, folderName);
}
