// Node only (CLI and tests): a folder's files as Blobs, read lazily from disk, like dropped Files in the browser.
//
// Not fs.openAsBlob: Node 20's reports `size` modulo 2^32 and reads nothing past 4 GiB, so a 4.9 GB shard of
// Llama-3.1-8B looked truncated. NodeFileBlob keeps a path and a byte range; sizes come from stat and positions
// are Numbers (exact to 2^53). Each read opens the file, reads its range at a position and closes it again, so
// nothing holds a file open between reads.
//
// A NodeFileBlob is a Blob for everything the engine uses (`size`, `type`, `name`, `slice`, `arrayBuffer`,
// `bytes`, `text`, `stream`), but Node's own Blob machinery does not know its contents: `new Blob([nodeFileBlob])`,
// `new Response(nodeFileBlob)` or `URL.createObjectURL` would see an empty Blob. Read it through its methods.

import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { GradPruneError } from '../errors';

/** The most bytes one `read` call asks for (Node refuses lengths of 2 GiB and more). */
const READ_CHUNK = 1 << 30;
/** What `stream()` reads at a time. */
const STREAM_CHUNK = 1 << 22;

export class NodeFileBlob extends Blob {
  readonly #path: string;
  readonly #start: number;
  readonly #end: number;
  readonly #type: string;
  /** The file's name (no folder), as File.name. */
  readonly name: string;
  readonly lastModified: number;

  /** The whole file, or the bytes [start, end) of it; `size` of the file must come from stat. */
  constructor(filePath: string, start: number, end: number, opts: { type?: string; lastModified?: number } = {}) {
    super([]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new RangeError(`NodeFileBlob: invalid range [${start}, ${end}) of ${filePath}`);
    }
    this.#path = filePath;
    this.#start = start;
    this.#end = end;
    this.#type = opts.type ?? '';
    this.name = path.basename(filePath);
    this.lastModified = opts.lastModified ?? 0;
  }

  /** The whole file at `filePath`, sized by stat (exact beyond 4 GiB). */
  static async open(filePath: string): Promise<NodeFileBlob> {
    const st = await stat(filePath, { bigint: true }).catch((e: unknown) => {
      throw fileSystemError(filePath, e);
    });
    if (st.isDirectory()) throw fileSystemError(filePath, Object.assign(new Error('is a folder'), { code: 'EISDIR' }));
    if (!st.isFile()) {
      throw new GradPruneError('file', `${filePath} is not a regular file (a device, socket or pipe).`, { subject: filePath, hint: 'Give the path of a file on disk.' });
    }
    if (st.size > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${filePath} is larger than 2^53 bytes`);
    return new NodeFileBlob(filePath, 0, Number(st.size), { lastModified: Number(st.mtimeMs) });
  }

  override get size(): number {
    return this.#end - this.#start;
  }

  override get type(): string {
    return this.#type;
  }

  /** Blob.slice semantics: negative positions count from the end, both are clamped to [0, size]. */
  override slice(start?: number, end?: number, contentType?: string): NodeFileBlob {
    const size = this.size;
    const rel = (v: number | undefined, dflt: number) => {
      if (v === undefined) return dflt;
      const n = Math.trunc(Number(v)) || 0;
      return n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
    };
    const from = rel(start, 0);
    const to = Math.max(rel(end, size), from);
    return new NodeFileBlob(this.#path, this.#start + from, this.#start + to, {
      type: contentType === undefined ? '' : String(contentType).toLowerCase(),
      lastModified: this.lastModified,
    });
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.#read(this.#start, this.#end);
    return bytes.buffer as ArrayBuffer;
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#read(this.#start, this.#end);
  }

  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.#read(this.#start, this.#end));
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let pos = this.#start;
    const end = this.#end;
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        if (pos >= end) {
          controller.close();
          return;
        }
        const to = Math.min(pos + STREAM_CHUNK, end);
        const chunk = await this.#read(pos, to);
        pos = to;
        controller.enqueue(chunk);
      },
    });
  }

  /** Bytes [from, to) of the file, read at their positions; fails when the file has become shorter. */
  async #read(from: number, to: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(to - from);
    if (out.byteLength === 0) return out;
    const fh = await open(this.#path, 'r').catch((e: unknown) => {
      throw fileSystemError(this.#path, e);
    });
    try {
      let done = 0;
      while (done < out.byteLength) {
        const { bytesRead } = await fh.read(out, done, Math.min(out.byteLength - done, READ_CHUNK), from + done).catch((e: unknown) => {
          throw fileSystemError(this.#path, e);
        });
        if (bytesRead === 0) {
          throw new GradPruneError('file', `${this.name}: the file ended at byte ${from + done} while reading bytes ${from}–${to}; it was truncated or changed after it was opened.`, {
            subject: this.name,
            hint: 'Do not change the model files while the studio reads them; download or export them again.',
          });
        }
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return out;
  }
}

/** What each file-system error means to a person, and what to do about it. */
const FS_ERRORS: Record<string, [what: string, hint: string]> = {
  ENOENT: ['no such file or folder', 'Check the path (and, for a symbolic link, what it points to).'],
  EACCES: ['permission denied', 'Make it readable for your user (chmod u+r), or copy it somewhere you can read.'],
  EPERM: ['the operation is not permitted', 'Make it readable for your user, or copy it somewhere you can read.'],
  EISDIR: ['it is a folder, not a file', 'Give the path of the file inside it.'],
  ENOTDIR: ['a part of the path is a file, not a folder', 'Check the path.'],
  ELOOP: ['a symbolic link loops back on itself', 'Replace the link with the file it should point to.'],
  EMFILE: ['too many files are open', 'Close other programs, or raise the open-file limit (ulimit -n).'],
  EIO: ['the disk reported an input/output error', 'Copy the file from a good source; the disk may be failing.'],
  ENAMETOOLONG: ['the name is too long for the file system', 'Use a shorter path.'],
};

/** "Cannot read <path> (<code>): <what it means>.", with what to do, for a Node file-system error. */
export function fileSystemError(filePath: string, e: unknown, opts: { folder?: boolean; hint?: string } = {}): GradPruneError {
  if (e instanceof GradPruneError) return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? 'error';
  const [what, hint] = FS_ERRORS[code] ?? [(e as Error)?.message ?? String(e), 'Check the path and its permissions.'];
  return new GradPruneError('file', `Cannot read ${opts.folder ? 'the folder ' : ''}${filePath} (${code}): ${what}.`, { subject: filePath, hint: opts.hint ?? hint, cause: e });
}

/** Files a model folder may hold that the studio reads: a broken link to one of them is an error, not a skip. */
const MODEL_FILE = /\.(json|safetensors|jinja)$/i;

/** Every regular file directly inside `dir`, keyed by file name. */
export async function openFolder(dir: string): Promise<Map<string, Blob>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') {
      throw new GradPruneError('file', `${dir} is a file, not a folder.`, { subject: dir, hint: 'Give the path of a Hugging Face model folder (the folder that holds config.json).' });
    }
    throw fileSystemError(dir, e, { folder: true, hint: 'Give the path of a Hugging Face model folder.' });
  }
  const files = new Map<string, Blob>();
  for (const name of names.sort()) {
    const full = path.join(dir, name);
    const st = await stat(full).catch(async (e: unknown) => {
      if (!MODEL_FILE.test(name)) return null; // an unrelated broken entry (a stale link to a README) is not in the way
      throw await brokenEntry(full, e);
    });
    if (st?.isFile()) files.set(name, await NodeFileBlob.open(full));
    else if (st?.isDirectory() && MODEL_FILE.test(name)) {
      throw new GradPruneError('file', `${full} is a folder, not a file.`, { subject: full, hint: `Put the checkpoint's ${name} file there (a model folder holds its files directly).` });
    }
  }
  return files;
}

/** A folder entry that cannot be followed: a dangling or looping symbolic link, or an unreadable entry. */
async function brokenEntry(full: string, e: unknown): Promise<GradPruneError> {
  const isLink = await lstat(full).then((l) => l.isSymbolicLink(), () => false);
  const code = (e as NodeJS.ErrnoException).code;
  if (isLink && code === 'ENOENT') {
    const target = await readlink(full).catch(() => '?');
    return new GradPruneError('file', `${full} is a symbolic link to ${target}, which does not exist (a dangling link).`, {
      subject: full,
      hint: 'Download the file again (a Hugging Face cache keeps the real files under blobs/), or replace the link with the file.',
      cause: e,
    });
  }
  return fileSystemError(full, e);
}

export async function openFile(file: string): Promise<Blob> {
  return NodeFileBlob.open(file);
}
