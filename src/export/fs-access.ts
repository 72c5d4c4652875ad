// The File System Access API as CheckpointSinks, typed structurally so the engine stays DOM-free: the studio's page
// picks a folder (showDirectoryPicker) or a file (showSaveFilePicker) and hands the handle to the worker through
// postMessage; the worker streams the export into it.
//
// A folder, `<picked>/<folderName>/`, never overwritten unasked: an existing one is refused unless `overwrite`
// (the page asks first: existingFolderFiles lists what it holds). Every way of writing leaves a person's previous
// files intact until the new ones are complete:
// - Every file: createWritable() writes a swap file that replaces the file only on close(); abort() discards it.
//   So no file is ever half-written under its name.
// - Where folders can be moved (FileSystemHandle.move on a directory; probed before writing), the export is built
//   in `<folderName>.tmp-<random>` and moved to its name when complete (an existing folder, with overwrite, is
//   moved aside first and removed after). A tab killed midway leaves at most the temporary folder.
// - Replacing where only files can be moved: each file is written under a temporary name beside the old one
//   (`<file>.gradprune-tmp-<random>`) and all are renamed into place once every one is complete; files of the old
//   checkpoint the new one does not have are removed after that. A failure before then leaves the old files as
//   they were (and removes the temporary ones).
// - Replacing where nothing can be moved: the export goes into a fresh `<folderName>-2` (or -3, …) beside the old
//   folder, which stays untouched; `note` says so.
// - A new folder where nothing can be moved: files go straight into `<folderName>`; abort removes the folder.

import { GradPruneError } from '../errors';
import { ZipStreamSink, type ByteTarget } from './zip';
import type { CheckpointSink, SinkFile } from './sink';

/** FileSystemWritableFileStream, as far as the export uses it. */
export interface WritableFileLike {
  write(data: Uint8Array<ArrayBuffer>): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

/** FileSystemFileHandle, as far as the export uses it (`move` where the browser has it). */
export interface FileHandleLike {
  readonly kind?: 'file';
  readonly name: string;
  createWritable(options?: { keepExistingData?: boolean }): Promise<WritableFileLike>;
  /** Rename within the same folder. */
  move?(newName: string): Promise<void>;
}

/** FileSystemDirectoryHandle, as far as the export uses it (`move` and `values` where the browser has them). */
export interface DirectoryHandleLike {
  readonly kind?: 'directory';
  readonly name: string;
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandleLike>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  /** Rename within the same parent. */
  move?(newName: string): Promise<void>;
  /** The folder's entries (Chromium's async iterator). */
  values?(): AsyncIterable<FileHandleLike | DirectoryHandleLike>;
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

/** Every file under `dir`, as paths relative to it ("adapter/adapter_config.json"), sorted; null where the browser cannot list folders. */
async function listFiles(dir: DirectoryHandleLike, prefix = ''): Promise<string[] | null> {
  if (typeof dir.values !== 'function') return null;
  const out: string[] = [];
  for await (const entry of dir.values()) {
    if (entry.kind === 'directory') out.push(...((await listFiles(entry as DirectoryHandleLike, `${prefix}${entry.name}/`)) ?? []));
    else out.push(`${prefix}${entry.name}`);
  }
  return out.sort();
}

/**
 * What `<parent>/<folderName>` holds before a save (the page asks whether to replace it): its files as relative
 * paths, [] for an empty folder or one the browser cannot list, null when there is no such folder.
 */
export async function existingFolderFiles(parent: DirectoryHandleLike, folderName: string): Promise<string[] | null> {
  if (!(await exists(parent, folderName, 'directory'))) return null;
  return (await listFiles(await parent.getDirectoryHandle(folderName))) ?? [];
}

/** Whether entries in `parent` can be renamed: a probe folder (or file) is made, moved and removed. */
async function canMove(parent: DirectoryHandleLike, kind: 'file' | 'directory'): Promise<boolean> {
  const name = `.gradprune-probe-${randomTag()}`;
  const probe = kind === 'file' ? await parent.getFileHandle(name, { create: true }) : await parent.getDirectoryHandle(name, { create: true });
  let at = name;
  try {
    if (typeof probe.move !== 'function') return false;
    await probe.move(`${name}-moved`);
    at = `${name}-moved`;
    return true;
  } catch {
    return false;
  } finally {
    await parent.removeEntry(at, { recursive: kind === 'directory' }).catch(() => undefined);
  }
}

/** The first of `<name>-2`, `<name>-3`, … that nothing in `parent` is called. */
async function freeName(parent: DirectoryHandleLike, name: string): Promise<string> {
  for (let n = 2; ; n++) {
    const candidate = `${name}-${n}`;
    if (!(await exists(parent, candidate, 'directory')) && !(await exists(parent, candidate, 'file'))) return candidate;
  }
}

export interface DirectorySinkOptions {
  /** Replace an existing `<folderName>`: once the new files are complete (see the ways above). */
  overwrite?: boolean;
}

/**
 * How the folder is written: built under a temporary name and moved (`staged`), straight into a new folder
 * (`direct`), over the old one with temporary file names renamed at the end (`inPlace`), or beside it (`beside`).
 */
type WriteMode = 'staged' | 'direct' | 'inPlace' | 'beside';

/** A file written under a temporary name in `inPlace` mode, renamed to `base` at commit. */
interface PendingFile {
  path: string;
  dir: DirectoryHandleLike;
  base: string;
  temp: string;
  handle: FileHandleLike;
}

/** The export as `<parent>/<folderName>/…` through the File System Access API. */
export class DirectorySink implements CheckpointSink {
  private folder: DirectoryHandleLike | null = null;
  /** The folder being written: a temporary name (staged), a fresh one beside the old (beside), else folderName. */
  private folderAt = '';
  private mode: WriteMode = 'direct';
  private open: WritableFileLike | null = null;
  private readonly pending: PendingFile[] = [];
  /** inPlace: the old checkpoint's files, removed at commit where the new one has no file of that path. */
  private previous: string[] = [];

  constructor(
    private readonly parent: DirectoryHandleLike,
    readonly folderName: string,
    private readonly opts: DirectorySinkOptions = {},
  ) {}

  /** The folder's name in the picked folder once written: folderName, or the fresh name beside it. */
  get savedFolder(): string {
    return this.mode === 'beside' ? this.folderAt : this.folderName;
  }

  /** What a person should know about where the files went (null: where they asked). */
  get note(): string | null {
    if (this.mode !== 'beside') return null;
    return `This browser cannot rename files in the folder you picked, so ${this.folderName} was left as it was and the new checkpoint is in ${this.folderAt}.`;
  }

  private async root(): Promise<DirectoryHandleLike> {
    if (this.folder) return this.folder;
    if (await exists(this.parent, this.folderName, 'file')) {
      throw new GradPruneError('input', `The folder you picked holds a file named ${this.folderName}.`, { subject: this.folderName, hint: 'Pick another folder, or move or delete that file first.' });
    }
    const present = await exists(this.parent, this.folderName, 'directory');
    if (present && !this.opts.overwrite) {
      throw new GradPruneError('input', `The folder you picked already holds ${this.folderName}: the download does not overwrite it.`, {
        subject: this.folderName,
        hint: `Pick another folder, or move or delete ${this.folderName} first.`,
      });
    }
    if (await canMove(this.parent, 'directory')) this.mode = 'staged';
    else if (!present) this.mode = 'direct';
    else this.mode = (await canMove(this.parent, 'file')) ? 'inPlace' : 'beside';
    this.folderAt = this.mode === 'staged' ? `${this.folderName}.tmp-${randomTag()}` : this.mode === 'beside' ? await freeName(this.parent, this.folderName) : this.folderName;
    this.folder = await this.parent.getDirectoryHandle(this.folderAt, { create: true });
    if (this.mode === 'inPlace') this.previous = (await listFiles(this.folder)) ?? [];
    return this.folder;
  }

  async createFile(name: string): Promise<SinkFile> {
    const parts = name.split('/');
    let dir = await this.root();
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
    const base = parts.at(-1)!;
    const temp = this.mode === 'inPlace' ? `${base}.gradprune-tmp-${randomTag()}` : base;
    const handle = await dir.getFileHandle(temp, { create: true });
    if (this.mode === 'inPlace') this.pending.push({ path: name, dir, base, temp, handle });
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
    if (this.mode === 'staged') await this.moveFolderIntoPlace(folder);
    if (this.mode === 'inPlace') await this.renameFilesIntoPlace();
  }

  private async moveFolderIntoPlace(folder: DirectoryHandleLike): Promise<void> {
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

  /** Every new file is complete: each replaces its old namesake, then the old checkpoint's other files go. */
  private async renameFilesIntoPlace(): Promise<void> {
    for (const f of this.pending) {
      if (await exists(f.dir, f.base, 'file')) await f.dir.removeEntry(f.base);
      await f.handle.move!(f.base);
    }
    const written = new Set(this.pending.map((f) => f.path));
    const removed = new Set<string>();
    for (const path of this.previous.filter((p) => !written.has(p))) {
      const parts = path.split('/');
      // A subfolder the new checkpoint has nothing in (an old PEFT adapter/) goes whole.
      if (parts.length > 1 && ![...written].some((w) => w.startsWith(`${parts[0]}/`))) {
        if (!removed.has(parts[0])) await this.folder!.removeEntry(parts[0], { recursive: true });
        removed.add(parts[0]);
        continue;
      }
      let dir = this.folder!;
      for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part);
      await dir.removeEntry(parts.at(-1)!);
    }
    this.pending.length = 0;
  }

  async abort(reason?: unknown): Promise<void> {
    await this.open?.abort(reason).catch(() => undefined);
    this.open = null;
    if (!this.folder) return;
    if (this.mode === 'inPlace') {
      // The old files stay; only the temporary ones go.
      for (const f of this.pending) await f.dir.removeEntry(f.temp).catch(() => undefined);
      this.pending.length = 0;
      return;
    }
    await this.parent.removeEntry(this.folderAt, { recursive: true }).catch(() => undefined);
  }
}

/** One zip streamed into a picked file (showSaveFilePicker's handle); abort() leaves the file as it was. */
export async function zipFileSink(handle: FileHandleLike, folderName: string): Promise<ZipStreamSink> {
  const writable = await handle.createWritable({ keepExistingData: false });
  const target: ByteTarget = { write: (b) => writable.write(b), close: () => writable.close(), abort: (r) => writable.abort(r) };
  return new ZipStreamSink(target, folderName);
}
