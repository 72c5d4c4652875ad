// Node only (CLI and tests): a folder's files as Blobs, read lazily by fs.openAsBlob, like dropped Files in the browser.
import { openAsBlob } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { GradPruneError } from '../errors';

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
    if ((await stat(full)).isFile()) files.set(name, await openAsBlob(full));
  }
  return files;
}

export async function openFile(file: string): Promise<Blob> {
  try {
    return await openAsBlob(file);
  } catch (e) {
    throw new GradPruneError('file', `Cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, { subject: file });
  }
}
