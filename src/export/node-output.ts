// Node only (the CLI): where a command may write, and how it writes there without ever losing a person's files.
//
// checkOutput refuses, before any work, an output that is (or is inside, or holds) a model folder the command
// reads, that is or holds one of its input files, that exists already (unless overwrite), or whose folder cannot
// take new files (under a file, read-only, no permission, a virtual file system such as /proc). Paths are compared
// after resolving symlinks as far as they exist, so two spellings of one folder compare equal.
//
// Every output is written under a temporary name beside its target (`<target>.tmp-<random>`, same file system,
// so the rename is atomic) and renamed into place only when complete; see replaceWith. The folders it creates are
// made one level at a time (fs.mkdir's `recursive` loops forever where mkdir answers ENOENT for an existing
// parent, as /proc does) and removed again when the write fails.

import { randomBytes } from 'node:crypto';
import { rmdirSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { GradPruneError } from '../errors';

export type OutputKind = 'file' | 'folder';

export interface OutputChecks {
  /** Folders the command reads a model or adapter from: the output may not be one, be inside one, or hold one. */
  sourceFolders?: string[];
  /** Files the command reads (scores.json, its IGIA state, the dataset): the output may not be or hold one. */
  inputFiles?: string[];
  /** The command-line option that named the output, for messages (default --out). */
  option?: string;
  /** For a file output given as a folder: the file name to suggest inside it. */
  fileName?: string;
  /** Replace an existing output (atomically, once the new one is complete) instead of refusing it. */
  overwrite?: boolean;
}

/** A path that does not exist (or cannot, as under a file). */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);
const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? '';

async function statOrNull(p: string) {
  try {
    return await stat(p);
  } catch (e) {
    if (MISSING.has(codeOf(e))) return null;
    throw e;
  }
}

/** `p` with symlinks resolved as far as it exists (the rest appended). */
export async function resolvedPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(head), ...tail.reverse());
    } catch (e) {
      if (!MISSING.has(codeOf(e))) throw e;
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

/** A file-system error (errno code), as opposed to a failure of what produced the bytes. */
export const isFsError = (e: unknown): boolean => /^E[A-Z]+$/.test(codeOf(e));

/**
 * An output problem as the person's to fix: what happened to which path, and what to do. 'input' (the path is
 * wrong: found before any work) or 'file' (writing failed midway, e.g. the disk filled up).
 */
export function outputError(e: unknown, given: string, option = '--out', where = given, code: 'input' | 'file' = 'input'): GradPruneError {
  const errno = codeOf(e) || (e as Error).message;
  const why: Record<string, string> = {
    EACCES: `you may not write in ${where}`,
    EPERM: `${where} does not allow new files`,
    EROFS: `${where} is on a read-only file system`,
    ENOENT: `${where} does not take new files`,
    ENOTDIR: where === given ? `${given} is under a file, not a folder` : `${where} is a file, not a folder`,
    EISDIR: `${where} is a folder`,
    EEXIST: `${where} already exists`,
    ENOSPC: `the disk of ${where} is full`,
    EDQUOT: `the disk quota of ${where} is used up`,
    ENAMETOOLONG: `the path ${where} is too long`,
    ELOOP: `${where} is a loop of symbolic links`,
  };
  return new GradPruneError(code, `Cannot write ${option} ${given}: ${why[errno] ?? `the file system refused (${errno})`} (${errno}).`, {
    subject: option.replace(/^--/, ''),
    hint:
      errno === 'EEXIST'
        ? `Give ${option} a new name, or add --overwrite to replace it.`
        : `Give ${option} a path in a folder you can write to${errno === 'ENOSPC' || errno === 'EDQUOT' ? ', on a disk with room for it' : ''}.`,
    cause: e,
  });
}

const refuse = (option: string, message: string, hint: string) => new GradPruneError('input', message, { subject: option.replace(/^--/, ''), hint });

/** Refuse an output the command must not write (see OutputChecks); returns its resolved path. Writes nothing. */
export async function checkOutput(out: string, kind: OutputKind, checks: OutputChecks = {}): Promise<string> {
  const option = checks.option ?? '--out';
  const what = kind === 'folder' ? 'the export' : 'the command';
  let target: string;
  try {
    target = await resolvedPath(out);
  } catch (e) {
    throw outputError(e, out, option);
  }
  for (const src of checks.sourceFolders ?? []) {
    const source = await resolvedPath(src).catch(() => path.resolve(src));
    if (target === source) throw refuse(option, `${option} ${out} is the model folder itself: ${what} would overwrite the model it reads.`, `Give ${option} a new ${kind} outside the model folder, e.g. beside it.`);
    if (isInside(target, source)) throw refuse(option, `${option} ${out} is inside the model folder ${src}: ${what} would write among the model's own files.`, `Give ${option} a new ${kind} outside the model folder, e.g. beside it.`);
    if (isInside(source, target)) throw refuse(option, `${option} ${out} holds the model folder ${src}: replacing it would delete the model.`, `Give ${option} a new ${kind} beside the model folder.`);
  }
  const inputs = await Promise.all((checks.inputFiles ?? []).map(async (file) => ({ file, resolved: await resolvedPath(file).catch(() => path.resolve(file)) })));
  const same = inputs.find((i) => i.resolved === target);
  if (same) throw refuse(option, `${option} ${out} is the input file ${same.file}: ${what} would overwrite it.`, `Give ${option} a new ${kind === 'folder' ? 'folder for the exported files' : 'file name'}.`);
  const held = inputs.find((i) => isInside(i.resolved, target));
  if (held) {
    throw refuse(option, `${option} ${out} holds ${path.relative(target, held.resolved)}, which this command reads and ${what} would overwrite.`, `Give ${option} another folder, or move ${held.file} elsewhere first.`);
  }
  let st;
  try {
    st = await statOrNull(target);
  } catch (e) {
    throw outputError(e, out, option);
  }
  if (st && kind === 'folder' && !st.isDirectory()) {
    throw refuse(option, `${option} ${out} is a file, not a folder: the export writes a folder of files.`, `Give ${option} a new folder.`);
  }
  if (st && kind === 'file' && st.isDirectory()) {
    throw refuse(option, `${option} ${out} is a folder: the command writes one file.`, `Give ${option} the path of the file to write, e.g. ${path.join(out, checks.fileName ?? 'output')}.`);
  }
  const emptyFolder = st?.isDirectory() && (await readdir(target).catch(() => ['?'])).length === 0;
  if (st && !emptyFolder && !checks.overwrite) {
    throw refuse(option, `${option} ${out} already exists.`, `Give ${option} a new ${kind} name, or add --overwrite to replace it (the old ${kind} is removed only once the new one is complete).`);
  }
  await probeWritable(target, out, option);
  return target;
}

/** The nearest existing folder above `target` takes a new entry (made and removed at once); else why not. */
async function probeWritable(target: string, given: string, option: string): Promise<void> {
  let dir = path.dirname(target);
  for (;;) {
    const st = await stat(dir).catch((e) => (MISSING.has(codeOf(e)) ? null : Promise.reject(outputError(e, given, option, dir))));
    if (st && !st.isDirectory()) throw outputError(Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }), given, option, dir);
    if (st) break;
    if (path.dirname(dir) === dir) return;
    dir = path.dirname(dir);
  }
  const probe = path.join(dir, `.gradprune-probe-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(probe);
  } catch (e) {
    throw outputError(e, given, option, dir);
  }
  await rmdir(probe).catch(() => undefined);
}

/**
 * Make `dir` and any missing folders above it, one level at a time; returns the folders it made, outermost first
 * (for removeMadeFolders). A level that cannot be made throws its own error (never loops).
 */
export async function makeFolders(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !(await statOrNull(d)); d = path.dirname(d)) {
    if (path.dirname(d) === d) break;
    missing.unshift(d);
  }
  const made: string[] = [];
  for (const d of missing) {
    try {
      await mkdir(d);
      made.push(d);
    } catch (e) {
      if (codeOf(e) !== 'EEXIST' || !(await statOrNull(d))?.isDirectory()) {
        await removeMadeFolders(made);
        throw e;
      }
    }
  }
  return made;
}

/** Remove folders made by makeFolders when they are (still) empty, innermost first. */
export async function removeMadeFolders(made: readonly string[]): Promise<void> {
  for (const d of [...made].reverse()) await rmdir(d).catch(() => undefined);
}

/**
 * Temporary outputs not yet renamed into place, and the folders made for them: an interrupted command (Ctrl-C)
 * removes them on its way out.
 */
const pending = new Set<string>();
const pendingFolders = new Set<readonly string[]>();

/** Folders made for an output being written (from makeFolders): removed, when still empty, on interrupt. */
export const rememberMadeFolders = (made: readonly string[]): void => void pendingFolders.add(made);
export const forgetMadeFolders = (made: readonly string[]): void => void pendingFolders.delete(made);

/** `<target>.tmp-<random>`, remembered until released. */
export function temporaryPathFor(target: string): string {
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  pending.add(temp);
  return temp;
}

export const releaseTemporary = (temp: string): void => void pending.delete(temp);

/** Synchronously remove every temporary output still pending (from a signal handler, before exiting). */
export function removePendingTemporaries(): void {
  for (const temp of pending) {
    try {
      rmSync(temp, { recursive: true, force: true });
    } catch {
      // best effort on the way out
    }
  }
  pending.clear();
  for (const made of pendingFolders) {
    for (const d of [...made].reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // not empty, or gone
      }
    }
  }
  pendingFolders.clear();
}

/**
 * Put the complete `temp` (a file or folder) in place of `target`. A target that does not exist, or is an empty
 * folder, is simply replaced; any other is refused unless `overwrite`. Overwriting a file is one atomic rename;
 * overwriting a folder moves the old one aside (`<target>.old-<random>`), renames the new one in, then removes the
 * old one (and moves it back when the rename in fails). Returns whether something was replaced.
 */
export async function replaceWith(temp: string, target: string, opts: { overwrite?: boolean; given?: string; option?: string } = {}): Promise<boolean> {
  const given = opts.given ?? target;
  const st = await statOrNull(target);
  const folder = (await stat(temp)).isDirectory();
  if (st && st.isDirectory() !== folder) throw outputError(Object.assign(new Error('kind'), { code: folder ? 'ENOTDIR' : 'EISDIR' }), given, opts.option);
  if (st && folder && (await readdir(target)).length === 0) {
    await rmdir(target);
  } else if (st && !opts.overwrite) {
    throw outputError(Object.assign(new Error('exists'), { code: 'EEXIST' }), given, opts.option);
  } else if (st && folder) {
    const aside = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    await rename(target, aside);
    try {
      await rename(temp, target);
    } catch (e) {
      await rename(aside, target).catch(() => undefined);
      throw e;
    }
    releaseTemporary(temp);
    await rm(aside, { recursive: true, force: true });
    return true;
  }
  await rename(temp, target); // over an existing file: atomic
  releaseTemporary(temp);
  return !!st && !folder;
}

/** What a file holds: bytes, text, or chunks produced as they are written (a failing producer aborts the write). */
export type FileContent = Uint8Array | string | (() => AsyncIterable<Uint8Array>);

/**
 * Write files as one step: each into a temporary file beside its target, flushed; only when all are complete are
 * they renamed into place, in order. A failure before that leaves every previous file as it was and no
 * temporary behind. (`score` writes scores.json with its IGIA state: a pair from two runs would not match.)
 */
export async function writeFilesReplacing(files: { target: string; content: FileContent; given?: string }[], opts: { overwrite?: boolean; option?: string } = {}): Promise<void> {
  const temps: string[] = [];
  const made: string[] = [];
  rememberMadeFolders(made);
  let renamed = 0;
  try {
    for (const { target, content, given } of files) {
      made.push(...(await makeFolders(path.dirname(target)).catch((e) => Promise.reject(outputError(e, given ?? target, opts.option, path.dirname(target))))));
      const temp = temporaryPathFor(target);
      temps.push(temp);
      const fh = await open(temp, 'wx').catch((e) => Promise.reject(outputError(e, given ?? target, opts.option, path.dirname(target))));
      try {
        const chunks = typeof content === 'function' ? content() : [typeof content === 'string' ? new TextEncoder().encode(content) : content];
        for await (const chunk of chunks) {
          for (let done = 0; done < chunk.byteLength; ) {
            done += (await fh.write(chunk, done, chunk.byteLength - done).catch((e) => Promise.reject(outputError(e, given ?? target, opts.option, temp, 'file')))).bytesWritten;
          }
        }
        await fh.datasync().catch((e) => Promise.reject(outputError(e, given ?? target, opts.option, temp, 'file')));
      } finally {
        await fh.close();
      }
    }
    for (const [i, { target, given }] of files.entries()) {
      await replaceWith(temps[i], target, { ...opts, given });
      renamed++;
    }
  } catch (e) {
    for (const temp of temps.slice(renamed)) {
      await unlink(temp).catch(() => undefined);
      releaseTemporary(temp);
    }
    if (renamed === 0) await removeMadeFolders(made);
    throw isFsError(e) ? outputError(e, files[Math.min(renamed, files.length - 1)].given ?? files[0].target, opts.option, undefined, 'file') : e;
  } finally {
    forgetMadeFolders(made);
  }
}
