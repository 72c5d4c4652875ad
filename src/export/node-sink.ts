// Node only (the CLI): an exported folder written straight to disk, safely. Every file goes into a hidden
// temporary folder beside the target (`.<name>.gradprune-partial-<pid>-<n>`, same file system, so renames are
// atomic); only when the whole checkpoint is written is it renamed into place. An interrupted or failed export
// leaves no half-written checkpoint under the final name (at worst the hidden partial folder, which abort removes).
//
// checkOutputFolder refuses, before any work, an output that is the model folder or inside it, or that would
// overwrite one of the command's input files.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, realpath, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GradPruneError } from '../errors';
import { COPIED_FILE, RECIPE_FILE } from './checkpoint';
import type { CheckpointSink, SinkFile } from './sink';

/** Weight files of a Hugging Face checkpoint: a folder must not keep a previous export's next to new ones. */
export const WEIGHT_FILE = /^(model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json)$/;

/** Names an export may write at the top of its folder. */
export const EXPORTED_FILE = (name: string): boolean =>
  WEIGHT_FILE.test(name) ||
  COPIED_FILE.test(name) ||
  ['config.json', 'README.md', RECIPE_FILE, 'gradprune_recovery.json', 'adapter_config.json', 'adapter_model.safetensors'].includes(name);

/** A path that does not exist (or cannot, as under a file). */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

const errCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

async function statOrNull(p: string) {
  try {
    return await stat(p);
  } catch (e) {
    if (MISSING.has((e as NodeJS.ErrnoException).code ?? '')) return null;
    throw e;
  }
}

/** `p` with symlinks resolved as far as it exists (the rest appended), so two spellings of one folder compare equal. */
export async function resolvedPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(head), ...tail.reverse());
    } catch (e) {
      if (!MISSING.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      const parent = path.dirname(head);
      if (parent === head) return abs;
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

const isInside = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

export interface OutputChecks {
  /** Folders the command reads a model from (the model folder, --dense): the output may not be one or inside one. */
  sourceFolders?: string[];
  /** Files the command reads (scores.json, its IGIA state, the dataset): the export may not overwrite them. */
  inputFiles?: string[];
  /** The command-line option that named the output, for messages (default --out). */
  option?: string;
}

/** Refuse an output folder the export must not write (see OutputChecks); returns its resolved path. */
export async function checkOutputFolder(out: string, checks: OutputChecks = {}): Promise<string> {
  const option = checks.option ?? '--out';
  const target = await resolvedPath(out);
  for (const src of checks.sourceFolders ?? []) {
    const source = await resolvedPath(src);
    if (isInside(target, source)) {
      throw new GradPruneError('input', target === source ? `${option} ${out} is the model folder itself: the export would overwrite the model it reads.` : `${option} ${out} is inside the model folder ${src}: the export would write among the model's own files.`, {
        subject: option.replace(/^--/, ''),
        hint: 'Give --out a new folder outside the model folder, e.g. beside it.',
      });
    }
  }
  const inputs = await Promise.all((checks.inputFiles ?? []).map(async (file) => ({ file, resolved: await resolvedPath(file) })));
  const same = inputs.find((i) => i.resolved === target);
  if (same) {
    throw new GradPruneError('input', `${option} ${out} is the input file ${same.file}: the export would overwrite it.`, {
      subject: option.replace(/^--/, ''),
      hint: 'Give --out a new folder for the exported files.',
    });
  }
  const st = await statOrNull(target);
  if (st && !st.isDirectory()) {
    throw new GradPruneError('input', `${option} ${out} is a file, not a folder: the export writes a folder of files.`, {
      subject: option.replace(/^--/, ''),
      hint: 'Give --out a new folder (or an existing folder).',
    });
  }
  for (const { file, resolved: input } of inputs) {
    if (path.dirname(input) === target && EXPORTED_FILE(path.basename(input))) {
      throw new GradPruneError('input', `${option} ${out} holds ${path.basename(input)}, which this command reads and the export would overwrite.`, {
        subject: option.replace(/^--/, ''),
        hint: `Give --out another folder, or move ${file} elsewhere first.`,
      });
    }
  }
  return target;
}

let partialCounter = 0;

/**
 * A CheckpointSink into the folder `target`: files are written into a hidden partial folder beside it and renamed
 * into place by commit() (the whole folder when the target does not exist or is empty; file by file into an
 * existing folder, where a previous export's weight files that this one does not write are removed, since they
 * would mix with the new ones). abort() removes the partial folder.
 */
export class FolderSink implements CheckpointSink {
  readonly target: string;
  readonly partial: string;
  private readonly written: string[] = [];
  private open: FileHandle | null = null;
  private started = false;
  /** Notes for the person (e.g. stale weight files removed), for the CLI to print. */
  readonly notes: string[] = [];

  constructor(target: string) {
    this.target = path.resolve(target);
    const tag = `${process.pid}-${++partialCounter}-${randomBytes(3).toString('hex')}`;
    this.partial = path.join(path.dirname(this.target), `.${path.basename(this.target)}.gradprune-partial-${tag}`);
  }

  private fail(what: string, e: unknown): GradPruneError {
    return new GradPruneError('file', `Cannot write ${what} (${errCode(e)}).`, { subject: this.target, hint: 'Give --out a folder you can create and write to, on a disk with room for the checkpoint.' });
  }

  async createFile(name: string): Promise<SinkFile> {
    if (this.open) throw new Error(`FolderSink: ${name} was created while another file is still open`);
    if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new Error(`FolderSink: bad file name ${name}`);
    const file = path.join(this.partial, ...name.split('/'));
    let fh: FileHandle;
    try {
      if (!this.started) {
        await mkdir(path.dirname(this.partial), { recursive: true });
        await mkdir(this.partial);
        this.started = true;
      }
      await mkdir(path.dirname(file), { recursive: true });
      fh = await open(file, 'wx');
    } catch (e) {
      throw this.fail(`${name} into ${path.dirname(this.target)}`, e);
    }
    this.open = fh;
    this.written.push(name);
    return {
      write: async (bytes) => {
        let done = 0;
        try {
          while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done)).bytesWritten;
        } catch (e) {
          throw this.fail(`${name}`, e);
        }
      },
      close: async () => {
        this.open = null;
        await fh.close();
      },
    };
  }

  async commit(): Promise<void> {
    if (!this.started) {
      await mkdir(this.partial, { recursive: true });
      this.started = true;
    }
    const st = await statOrNull(this.target);
    if (st && !st.isDirectory()) throw new GradPruneError('file', `${this.target} became a file while the export was written.`, { subject: this.target });
    if (st && (await readdir(this.target)).length === 0) await rmdir(this.target);
    if (!st || !(await statOrNull(this.target))) {
      await rename(this.partial, this.target);
      return;
    }
    // An existing folder with files: move each new file in; drop a previous export's weights this one does not replace.
    const names = new Set(this.written);
    for (const old of await readdir(this.target)) {
      if (WEIGHT_FILE.test(old) && !names.has(old)) {
        await unlink(path.join(this.target, old));
        this.notes.push(`removed ${old} of a previous checkpoint in ${this.target}`);
      }
    }
    for (const name of this.written) {
      const dest = path.join(this.target, ...name.split('/'));
      await mkdir(path.dirname(dest), { recursive: true });
      await rename(path.join(this.partial, ...name.split('/')), dest);
    }
    await rm(this.partial, { recursive: true, force: true });
  }

  async abort(): Promise<void> {
    try {
      await this.open?.close();
    } catch {
      // already closed
    }
    this.open = null;
    await rm(this.partial, { recursive: true, force: true }).catch(() => undefined);
  }
}
