// The exported folder as one .zip: weights stored (they do not compress), text files deflated. ZipStreamSink is a
// CheckpointSink that streams the zip into a byte target as each file's bytes arrive (fflate's streaming Zip with
// ZipPassThrough / ZipDeflate; the studio passes a FileSystemWritableFileStream from showSaveFilePicker), so no
// copy of the checkpoint is built in memory. zipFolder builds the zip in memory, for small models.
//
// fflate writes plain (32-bit) zip, not zip64: a streamed zip is refused past 4 GiB, with a hint to save into a
// folder instead.

import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { GradPruneError } from '../errors';
import { ownBytes, writeBlobFile, type CheckpointSink, type SinkFile } from './sink';

const SLICE_BYTES = 16 * 2 ** 20;

/** The most bytes a zip without zip64 can hold (sizes and offsets are 32-bit). */
export const ZIP32_MAX_BYTES = 0xffff_ffff - 2 ** 20;

/** Where a streamed zip's bytes go: a FileSystemWritableFileStream, a WritableStream's writer, a Node file. */
export interface ByteTarget {
  write(bytes: Uint8Array<ArrayBuffer>): Promise<void>;
  close(): Promise<void>;
  abort?(reason?: unknown): Promise<void>;
}

/** Weights (and other binary files) are stored; the rest is deflated. */
export const isStoredInZip = (name: string): boolean => /\.(safetensors|bin|onnx|data)$/.test(name);

/** One zip streamed into `target`, its entries under `folder/` (or at the top level when folder is empty). */
export class ZipStreamSink implements CheckpointSink {
  private readonly zip: Zip;
  private readonly pending: Uint8Array[] = [];
  private failure: Error | null = null;
  private readonly prefix: string;
  /** Bytes of zip written to the target so far. */
  bytesWritten = 0;

  constructor(
    private readonly target: ByteTarget,
    folder = '',
    private readonly maxBytes = ZIP32_MAX_BYTES,
  ) {
    this.prefix = folder ? `${folder.replace(/\/+$/, '')}/` : '';
    this.zip = new Zip((err, chunk) => {
      if (err) this.failure = err;
      else this.pending.push(chunk);
    });
  }

  /** Hand what fflate produced to the target, in order, one chunk at a time. */
  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.pending.length) {
      const chunk = this.pending.shift()!;
      this.bytesWritten += chunk.byteLength;
      if (this.bytesWritten > this.maxBytes) {
        throw new GradPruneError('file', `The zip would be larger than ${(this.maxBytes / 2 ** 30).toFixed(1)} GiB, which a zip without zip64 cannot hold.`, {
          subject: 'zip',
          hint: 'Save the checkpoint into a folder instead.',
        });
      }
      await this.target.write(ownBytes(chunk));
    }
  }

  async createFile(name: string): Promise<SinkFile> {
    const entry = isStoredInZip(name) ? new ZipPassThrough(this.prefix + name) : new ZipDeflate(this.prefix + name, { level: 6 });
    this.zip.add(entry);
    return {
      write: async (bytes) => {
        for (let start = 0; start < bytes.byteLength; start += SLICE_BYTES) {
          entry.push(bytes.subarray(start, Math.min(bytes.byteLength, start + SLICE_BYTES)), false);
          await this.flush();
        }
      },
      close: async () => {
        entry.push(new Uint8Array(0), true);
        await this.flush();
      },
    };
  }

  async commit(): Promise<void> {
    this.zip.end();
    await this.flush();
    await this.target.close();
  }

  async abort(reason?: unknown): Promise<void> {
    try {
      this.zip.terminate();
    } catch {
      // already ended
    }
    this.pending.length = 0;
    await this.target.abort?.(reason).catch(() => undefined);
  }
}

/** A ByteTarget collecting the bytes in memory (tests; the in-memory zip). */
export class MemoryByteTarget implements ByteTarget {
  readonly parts: Uint8Array<ArrayBuffer>[] = [];
  closed = false;
  aborted = false;
  async write(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    this.parts.push(bytes);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  async abort(): Promise<void> {
    this.aborted = true;
    this.parts.length = 0;
  }
  blob(type = 'application/zip'): Blob {
    return new Blob(this.parts, { type });
  }
}

/** Zip `files` (sorted by name) into `target`, streamed, and close it. */
export async function zipFilesTo(target: ByteTarget, files: ReadonlyMap<string, Blob>, folder = ''): Promise<ZipStreamSink> {
  const sink = new ZipStreamSink(target, folder);
  try {
    for (const [name, blob] of [...files].sort(([a], [b]) => a.localeCompare(b))) await writeBlobFile(sink, name, blob);
    await sink.commit();
  } catch (e) {
    await sink.abort(e);
    throw e;
  }
  return sink;
}

/** Zip `files` under `folder/` (or at the top level when folder is empty), in memory: for small models. */
export async function zipFolder(files: ReadonlyMap<string, Blob>, folder = ''): Promise<Blob> {
  const target = new MemoryByteTarget();
  await zipFilesTo(target, files, folder);
  return target.blob();
}
