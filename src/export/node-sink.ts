// Node only (the CLI): an exported folder written straight to disk, safely. Every file goes into a temporary
// folder beside the target (`<out>.tmp-<random>`, same file system, so renames are atomic); only when the whole
// checkpoint is written is it renamed into place (an existing output only with overwrite, see replaceWith). An
// interrupted or failed export leaves the previous output as it was and nothing under the final name; abort
// removes the temporary folder and any parent folders the export made.
//
// What may be written where (not into a model folder, not over an input) is checked before any work by
// checkOutput in ./node-output.ts.

import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { checkOutput, forgetMadeFolders, isFsError, makeFolders, outputError, releaseTemporary, rememberMadeFolders, removeMadeFolders, replaceWith, temporaryPathFor, type OutputChecks } from './node-output';
import type { CheckpointSink, SinkFile } from './sink';

export { resolvedPath, type OutputChecks } from './node-output';

/** Refuse an output folder the export must not write (see OutputChecks); returns its resolved path. */
export const checkOutputFolder = (out: string, checks: OutputChecks = {}): Promise<string> => checkOutput(out, 'folder', checks);

export interface FolderSinkOptions {
  /** Replace an existing (non-empty) folder once the new one is complete; without it commit() refuses one. */
  overwrite?: boolean;
  /** How the person named the folder, and the option that did, for messages. */
  given?: string;
  option?: string;
}

/**
 * A CheckpointSink into the folder `target`: files are written into `<target>.tmp-<random>` beside it, and
 * commit() renames that folder into place (replacing an existing one only with `overwrite`). abort() removes the
 * temporary folder and the parent folders this sink made.
 */
export class FolderSink implements CheckpointSink {
  readonly target: string;
  readonly partial: string;
  private open: FileHandle | null = null;
  private started = false;
  private madeParents: string[] = [];
  /** Notes for the person (e.g. a previous output replaced), for the CLI to print. */
  readonly notes: string[] = [];

  constructor(
    target: string,
    private readonly opts: FolderSinkOptions = {},
  ) {
    this.target = path.resolve(target);
    this.partial = temporaryPathFor(this.target);
  }

  /** Making the folders is where a wrong path shows ('input'); a failure after that happened while writing ('file'). */
  private fail(e: unknown, where: string, code: 'input' | 'file' = 'file'): Error {
    return outputError(e, this.opts.given ?? this.target, this.opts.option, where, code);
  }

  private async start(): Promise<void> {
    if (this.started) return;
    try {
      this.madeParents = await makeFolders(path.dirname(this.target));
      rememberMadeFolders(this.madeParents);
      await mkdir(this.partial);
    } catch (e) {
      throw this.fail(e, path.dirname(this.target), 'input');
    }
    this.started = true;
  }

  async createFile(name: string): Promise<SinkFile> {
    if (this.open) throw new Error(`FolderSink: ${name} was created while another file is still open`);
    if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new Error(`FolderSink: bad file name ${name}`);
    await this.start();
    const file = path.join(this.partial, ...name.split('/'));
    let fh: FileHandle;
    try {
      await makeFolders(path.dirname(file));
      fh = await open(file, 'wx');
    } catch (e) {
      throw this.fail(e, this.partial);
    }
    this.open = fh;
    return {
      write: async (bytes) => {
        let done = 0;
        try {
          while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done)).bytesWritten;
        } catch (e) {
          throw this.fail(e, this.partial);
        }
      },
      close: async () => {
        this.open = null;
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      },
    };
  }

  async commit(): Promise<void> {
    await this.start();
    try {
      if (await replaceWith(this.partial, this.target, this.opts)) this.notes.push(`replaced the previous ${this.opts.given ?? this.target}`);
    } catch (e) {
      throw isFsError(e) ? this.fail(e, this.target) : e;
    }
    forgetMadeFolders(this.madeParents);
  }

  async abort(): Promise<void> {
    try {
      await this.open?.close();
    } catch {
      // already closed
    }
    this.open = null;
    await rm(this.partial, { recursive: true, force: true }).catch(() => undefined);
    releaseTemporary(this.partial);
    await removeMadeFolders(this.madeParents);
    forgetMadeFolders(this.madeParents);
  }
}
