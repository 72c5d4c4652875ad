// What a person hands the studio (a dropped folder, dropped files, a folder or file picker) → one flat list of
// files keyed by bare file name, as the engine expects a Hugging Face model folder.

import type { FileEntry } from '../worker/protocol';

/** A file with the path it had inside what was dropped or picked ("tiny-qwen2/reference/x.json"). */
export interface PickedFile {
  path: string;
  blob: Blob;
}

export interface FlatFolder {
  /** The dropped folder's name, or null when loose files were given. */
  folderName: string | null;
  files: FileEntry[];
  /** Deeper files hidden by a shallower file of the same name (e.g. a copy of config.json in a subfolder). */
  shadowed: string[];
  /** Each file's path inside what was given, the dropped folder's own name left off ("config.json", "reference/logits.safetensors"). */
  paths: Record<string, string>;
}

const depth = (p: string) => p.split('/').length;
const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Flatten by file name; where names repeat, the shallowest path wins (the model folder's own files). */
export function flattenByName(picked: readonly PickedFile[]): FlatFolder {
  const sorted = [...picked].sort((a, b) => depth(a.path) - depth(b.path) || a.path.localeCompare(b.path));
  const byName = new Map<string, FileEntry>();
  const shadowed: string[] = [];
  const paths: Record<string, string> = {};
  for (const p of sorted) {
    const name = baseName(p.path);
    if (!name || name.startsWith('.')) continue; // .DS_Store, .gitattributes and friends
    if (byName.has(name)) shadowed.push(p.path);
    else {
      byName.set(name, { name, blob: p.blob });
      paths[name] = p.path;
    }
  }
  const tops = new Set(picked.map((p) => (p.path.includes('/') ? p.path.slice(0, p.path.indexOf('/')) : null)));
  const [onlyTop] = tops;
  const folderName = tops.size === 1 && onlyTop ? onlyTop : null;
  const inFolder = (path: string) => (folderName ? path.slice(folderName.length + 1) : path);
  for (const name of Object.keys(paths)) paths[name] = inFolder(paths[name]);
  return { folderName, files: [...byName.values()], shadowed, paths };
}

/** Files from an <input type=file> (with or without webkitdirectory). */
export function pickedFromInput(list: FileList | readonly File[]): PickedFile[] {
  return Array.from(list, (file) => ({ path: file.webkitRelativePath || file.name, blob: file }));
}

/**
 * Files from a drop: folders are walked recursively through webkitGetAsEntry. The entries must be taken
 * while the drop event is being handled (the DataTransfer empties afterwards), so call this synchronously
 * from the handler and await the promise it returns.
 */
export function pickedFromDrop(dt: DataTransfer): Promise<PickedFile[]> {
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items ?? [])) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.() ?? null;
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  if (!entries.length && !loose.length) loose.push(...Array.from(dt.files ?? []));
  return (async () => {
    const out: PickedFile[] = loose.map((f) => ({ path: f.name, blob: f }));
    for (const e of entries) out.push(...(await walk(e, '')));
    return out;
  })();
}

async function walk(entry: FileSystemEntry, prefix: string): Promise<PickedFile[]> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    return [{ path, blob: file }];
  }
  if (!entry.isDirectory) return [];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: PickedFile[] = [];
  // readEntries returns at most ~100 entries per call: read until it returns none.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) out.push(...(await walk(child, path)));
  }
  return out;
}
