// Step 6: the pruned (and perhaps recovered) checkpoint, as an in-memory zip, into a picked folder, or as one zip
// streamed into a picked file.

import type { AdapterExport, ExportTarget } from '../../worker/protocol';
import { emptyDownload } from '../slices';
import { useStudio } from '../store';
import { toInfo, worker } from '../worker-connection';
import { withActivity } from './job';

const set = useStudio.setState;
const get = useStudio.getState;

/** Merged into the weights, or a separate PEFT adapter: a zip prepared for the other choice is dropped. */
export function setExportAdapter(adapter: AdapterExport): void {
  set((s) => (s.exportAdapter === adapter ? s : { exportAdapter: adapter, download: emptyDownload() }));
}

/** Build the zip (and keep the files for a folder save). */
export async function prepareDownload(): Promise<void> {
  const adapter = get().exportAdapter;
  set({ download: { ...emptyDownload(), running: true } });
  try {
    const result = await withActivity('download', 'Zipping', () => worker().request({ type: 'exportZip', adapter }));
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

/** The exported folder's name as the worker gives it: <model>-gradprune-<N>L, "-recovered" with a merged adapter. */
function exportFolderName(): string {
  const s = get();
  const base = `${s.model.loaded?.summary.name ?? 'model'}-gradprune-${s.prune.result?.plan.kept.length ?? 0}L`;
  return s.recover.result && s.exportAdapter === 'merged' ? `${base}-recovered` : base;
}

/** Open the picker for a save (inside the click: it needs the user gesture); null when the person closed it. */
async function pickTarget(kind: 'folder' | 'zipFile'): Promise<ExportTarget | null> {
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
 * Nothing is built in memory first.
 */
export async function saveExport(kind: 'folder' | 'zipFile'): Promise<void> {
  const adapter = get().exportAdapter;
  let target: ExportTarget | null;
  try {
    target = await pickTarget(kind);
  } catch (err) {
    set((s) => ({ download: { ...s.download, error: toInfo(err) } }));
    return;
  }
  if (!target) return;
  set((s) => ({ download: { ...s.download, running: true, error: null, saved: null } }));
  const what = kind === 'folder' ? 'folder' : 'zip file';
  try {
    const result = await withActivity('download', kind === 'folder' ? 'Writing the folder' : 'Writing the zip', () => worker().request({ type: 'exportZip', adapter, target }));
    set((s) => ({ download: { ...s.download, running: false, saved: result.savedTo ?? null } }));
  } catch (err) {
    const info = toInfo(err);
    set((s) => ({ download: { ...s.download, running: false, error: { ...info, message: `Could not write the ${what}: ${info.message}` } } }));
  }
}
