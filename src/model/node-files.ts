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

import { open, readdir, stat } from 'node:fs/promises';
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
    const st = await stat(filePath, { bigint: true });
    if (!st.isFile()) throw new Error(`${filePath} is not a regular file`);
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
    const fh = await open(this.#path, 'r');
    try {
      let done = 0;
      while (done < out.byteLength) {
        const { bytesRead } = await fh.read(out, done, Math.min(out.byteLength - done, READ_CHUNK), from + done);
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

/** Every regular file directly inside `dir`, keyed by file name. */
export async function openFolder(dir: string): Promise<Map<string, Blob>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new GradPruneError('file', `Cannot read the folder ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, {
      subject: dir,
      hint: 'Give the path of a Hugging Face model folder.',
    });
  }
  const files = new Map<string, Blob>();
  for (const name of names.sort()) {
    const full = path.join(dir, name);
    if ((await stat(full)).isFile()) files.set(name, await NodeFileBlob.open(full));
  }
  return files;
}

export async function openFile(file: string): Promise<Blob> {
  try {
    return await NodeFileBlob.open(file);
  } catch (e) {
    throw new GradPruneError('file', `Cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, { subject: file });
  }
}
