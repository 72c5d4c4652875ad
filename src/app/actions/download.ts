// Step 6: the pruned (and perhaps recovered) checkpoint, as an in-memory zip, into a picked folder, or as one zip
// streamed into a picked file.

import { existingFolderFiles } from '../../export/fs-access';
import type { AdapterExport, ExportFilesEvent, ExportTarget, FolderFormat } from '../../worker/protocol';
import { emptyDownload, type DownloadFormat } from '../slices';
import { useStudio } from '../store';
import { toInfo, worker } from '../worker-connection';
import { withActivity } from './job';

const set = useStudio.setState;
const get = useStudio.getState;

/** Merged into the weights, or a separate PEFT adapter: a zip prepared for the other choice is dropped. */
export function setExportAdapter(adapter: AdapterExport): void {
  set((s) => (s.exportAdapter === adapter ? s : { exportAdapter: adapter, download: emptyDownload() }));
}

/** Hugging Face checkpoint, transformers.js ONNX folder or GGUF file: a zip prepared for another format is dropped. */
export function setExportFormat(format: DownloadFormat): void {
  set((s) => (s.exportFormat === format ? s : { exportFormat: format, download: emptyDownload() }));
}

/** The folder format the folder downloads write (GGUF is one file: its own panel writes it). */
const folderFormat = (): FolderFormat => (get().exportFormat === 'onnx' ? 'onnx' : 'safetensors');

/** Build the zip (and keep the files for a folder save). */
export async function prepareDownload(): Promise<void> {
  const adapter = get().exportAdapter;
  const format = folderFormat();
  set({ download: { ...emptyDownload(), running: true } });
  try {
    const result = await withActivity('download', 'Zipping', () => worker().request({ type: 'exportZip', adapter, format }));
    set({ download: { running: false, result, error: null, saved: null } });
  } catch (err) {
    set({ download: { running: false, result: null, error: toInfo(err), saved: null } });
  }
}

type Pickers = {
  showDirectoryPicker?: (o?: object) => Promise<FileSystemDirectoryHandle>;
  showSaveFilePicker?: (o?: object) => Promise<FileSystemFileHandle>;
};

/** Which File System Access pickers this browser has (Chrome and Edge have both; Firefox and Safari neither). */
export function savePickers(): { folder: boolean; zipFile: boolean } {
  const w = (typeof window === 'undefined' ? {} : window) as Pickers;
  return { folder: typeof w.showDirectoryPicker === 'function', zipFile: typeof w.showSaveFilePicker === 'function' };
}

/**
 * The exported folder's name as the worker gives it: <model>-gradprune-<N>L, after a recovery run "-recovered"
 * (adapter merged) or "-recovered-peft" (adapter apart), the ONNX folder "-onnx" after either (always merged), so
 * that each variant has its own.
 */
export function exportFolderName(): string {
  const s = get();
  const base = `${s.model.loaded?.summary.name ?? 'model'}-gradprune-${s.prune.result?.plan.kept.length ?? 0}L`;
  if (s.exportFormat === 'onnx') return `${base}${s.recover.result ? '-recovered' : ''}-onnx`;
  return s.recover.result ? `${base}-recovered${s.exportAdapter === 'peft' ? '-peft' : ''}` : base;
}

/** The files (and sizes) the download of a format and adapter choice will hold, from the worker; null when there is nothing to export or it failed. */
export async function exportFilesFor(adapter: AdapterExport, format: FolderFormat): Promise<ExportFilesEvent | null> {
  try {
    return await worker().request({ type: 'exportFiles', adapter, format });
  } catch {
    return null; // the table then shows the pruned checkpoint's files (what applyPrune reported)
  }
}

/** A folder save that would replace files: what the person is asked ("The folder X already holds … Replace them?"). */
export interface ReplaceQuestion {
  /** "<picked folder>/<folder name>". */
  folder: string;
  /** What it holds now, as paths inside it. */
  files: string[];
  handle: FileSystemDirectoryHandle;
}

/** Open the picker for a save (inside the click: it needs the user gesture); null when the person closed it. */
async function pickTarget(kind: 'folder' | 'zipFile'): Promise<Exclude<ExportTarget, { kind: 'memory' }> | null> {
  const w = window as unknown as Pickers;
  try {
    if (kind === 'folder') return w.showDirectoryPicker ? { kind, handle: await w.showDirectoryPicker({ mode: 'readwrite', id: 'gradprune-export' }) } : null;
    if (!w.showSaveFilePicker) return null;
    const types = [{ description: 'Zip archive', accept: { 'application/zip': ['.zip'] } }];
    return { kind, handle: await w.showSaveFilePicker({ suggestedName: `${exportFolderName()}.zip`, types }) };
  } catch (err) {
    if ((err as Error).name === 'AbortError') return null;
    throw err;
  }
}

/**
 * Save the checkpoint straight into what the person picks: a folder (showDirectoryPicker; the worker writes
 * <picked>/<folder name>/… file by file) or one zip file (showSaveFilePicker; the worker streams the zip into it).
 * Nothing is built in memory first. Where the picked folder already holds <folder name>, nothing is written: the
 * answer is the question to ask (replaceFolder writes after a yes).
 */
export async function saveExport(kind: 'folder' | 'zipFile'): Promise<ReplaceQuestion | null> {
  let target: Exclude<ExportTarget, { kind: 'memory' }> | null;
  try {
    target = await pickTarget(kind);
    if (target?.kind === 'folder') {
      const folderName = exportFolderName();
      const files = await existingFolderFiles(target.handle, folderName);
      if (files) return { folder: `${target.handle.name}/${folderName}`, files, handle: target.handle };
    }
  } catch (err) {
    set((s) => ({ download: { ...s.download, error: toInfo(err) } }));
    return null;
  }
  if (target) await writeExport(target);
  return null;
}

/** The person said Replace: the folder's files are replaced once the new ones are complete (see export/fs-access.ts). */
export async function replaceFolder(question: ReplaceQuestion): Promise<void> {
  await writeExport({ kind: 'folder', handle: question.handle, overwrite: true });
}

async function writeExport(target: Exclude<ExportTarget, { kind: 'memory' }>): Promise<void> {
  const adapter = get().exportAdapter;
  const format = folderFormat();
  set((s) => ({ download: { ...s.download, running: true, error: null, saved: null } }));
  const what = target.kind === 'folder' ? 'folder' : 'zip file';
  try {
    const result = await withActivity('download', target.kind === 'folder' ? 'Writing the folder' : 'Writing the zip', () => worker().request({ type: 'exportZip', adapter, format, target }));
    const saved = result.savedTo ? `${result.savedTo}.${result.note ? ` ${result.note}` : ''}` : null;
    set((s) => ({ download: { ...s.download, running: false, saved } }));
  } catch (err) {
    const info = toInfo(err);
    set((s) => ({ download: { ...s.download, running: false, error: { ...info, message: `Could not write the ${what}: ${info.message}` } } }));
  }
}
