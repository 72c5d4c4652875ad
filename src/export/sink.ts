// Where an exported checkpoint goes, file by file and chunk by chunk, so that a model larger than JavaScript's
// memory is written as it is made: a folder on disk (the CLI, ./node-sink.ts), a folder picked through the File
// System Access API or one zip streamed into a picked file (the studio, ./fs-access.ts and ./zip.ts), or Blobs in
// memory (small models, tests). DOM-free and Node-free: sinks that need either live in their own files.
//
// The contract: files are created one at a time (a file is closed before the next is created); `commit()` after
// the last file makes the whole folder visible under its final name(s); `abort()` on any failure removes what was
// written, so an interrupted export leaves no half-written checkpoint behind under the final name.

/** One file being written: its bytes in order, then close. */
export interface SinkFile {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointSink {
  /** A new file of the folder; `name` may hold '/' for a subfolder (a PEFT adapter's "adapter/…"). `size` is a hint. */
  createFile(name: string, size?: number): Promise<SinkFile>;
  /** Every file is written and closed: make the folder appear under its final name. */
  commit(): Promise<void>;
  /** Something failed: drop what was written (best effort; never throws). */
  abort(reason?: unknown): Promise<void>;
}

/** What was written: each file's name and byte count, in the order written. */
export type WrittenFiles = Map<string, number>;

/** Blobs are copied in slices of this many bytes (a multi-GB input file is never read whole). */
export const COPY_SLICE_BYTES = 16 * 2 ** 20;

/** Write `bytes` as the file `name`. */
export async function writeBytesFile(sink: CheckpointSink, name: string, bytes: Uint8Array): Promise<number> {
  const file = await sink.createFile(name, bytes.byteLength);
  await file.write(bytes);
  await file.close();
  return bytes.byteLength;
}

/** Write a Blob (a dropped File, a NodeFileBlob) as the file `name`, slice by slice. */
export async function writeBlobFile(sink: CheckpointSink, name: string, blob: Blob): Promise<number> {
  const file = await sink.createFile(name, blob.size);
  for (let start = 0; start < blob.size; start += COPY_SLICE_BYTES) {
    const end = Math.min(blob.size, start + COPY_SLICE_BYTES);
    await file.write(new Uint8Array(await blob.slice(start, end).arrayBuffer()));
  }
  await file.close();
  return blob.size;
}

/** Write a whole folder (name → Blob) into the sink and commit; abort on failure. */
export async function writeFolderTo(sink: CheckpointSink, files: ReadonlyMap<string, Blob>): Promise<WrittenFiles> {
  return withSink(sink, async () => {
    const written: WrittenFiles = new Map();
    for (const [name, blob] of files) written.set(name, await writeBlobFile(sink, name, blob));
    return written;
  });
}

/** Run `write` against the sink; commit when it succeeds, abort (and rethrow) when it fails. */
export async function withSink<T>(sink: CheckpointSink, write: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await write();
  } catch (e) {
    await sink.abort(e);
    throw e;
  }
  try {
    await sink.commit();
  } catch (e) {
    await sink.abort(e);
    throw e;
  }
  return result;
}

/** Blobs in memory, one per file: for small models, tests and the studio's in-memory zip. */
export class MemorySink implements CheckpointSink {
  /** The finished files, in the order written (complete only after commit). */
  readonly files = new Map<string, Blob>();
  private committed = false;

  async createFile(name: string): Promise<SinkFile> {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    return {
      write: async (bytes) => void parts.push(ownBytes(bytes)),
      close: async () => void this.files.set(name, new Blob(parts)),
    };
  }
  async commit(): Promise<void> {
    this.committed = true;
  }
  async abort(): Promise<void> {
    if (!this.committed) this.files.clear();
  }
}

/**
 * Counts and discards: what each file's size was and the largest single write. For measuring an export without
 * storing it (tests, the bench).
 */
export class CountingSink implements CheckpointSink {
  readonly sizes: WrittenFiles = new Map();
  largestWrite = 0;
  totalBytes = 0;
  committed = false;
  aborted = false;
  /** Optional: see each chunk as it is written (e.g. hash it). */
  constructor(private readonly onChunk?: (name: string, bytes: Uint8Array) => void) {}

  async createFile(name: string): Promise<SinkFile> {
    let size = 0;
    return {
      write: async (bytes) => {
        size += bytes.byteLength;
        this.totalBytes += bytes.byteLength;
        this.largestWrite = Math.max(this.largestWrite, bytes.byteLength);
        this.onChunk?.(name, bytes);
      },
      close: async () => void this.sizes.set(name, size),
    };
  }
  async commit(): Promise<void> {
    this.committed = true;
  }
  async abort(): Promise<void> {
    this.aborted = true;
  }
}

/** A Blob part must be ArrayBuffer-backed: a SharedArrayBuffer view is copied, anything else kept as is. */
export const ownBytes = (b: Uint8Array): Uint8Array<ArrayBuffer> => (b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : b.slice());
