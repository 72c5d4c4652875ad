// Step 1: a model from dropped or picked files, or the embedded demo (which goes on to its dataset), and the GPU.

import type { FileEntry } from '../../worker/protocol';
import { flattenByName, type FlatFolder, type PickedFile } from '../files';
import { loadSavedModel } from '../persist';
import { pruneSlice, scoreSlice } from '../slices';
import { resetAfter, useStudio, type DemoDataset } from '../store';
import { toInfo, worker } from '../worker-connection';
import { loadDatasetFile } from './dataset';

const set = useStudio.setState;

/** Bumped by every load; a load whose token is stale when it settles changes nothing. */
let loadToken = 0;

/**
 * Send model files to the worker and show the result (summary and fit) or the error under the drop zone. Until the
 * new model has loaded, everything stays as it was: a failed load leaves the previous model, dataset, scores and
 * pruned result in place (the worker keeps them too) and only adds its error. A loaded model starts from its own
 * saved settings (per model fingerprint) or the defaults; every later step starts afresh. True when it loaded.
 */
export async function loadModelFiles(files: FileEntry[], name: string, source = name, folder: Pick<FlatFolder, 'paths' | 'shadowed'> | null = null): Promise<boolean> {
  const token = ++loadToken;
  set((s) => ({ model: { ...s.model, loading: { source, stage: `Opening ${source}` }, error: null } }));
  try {
    const result = await worker().request({ type: 'loadModel', files, name });
    if (token !== loadToken) return false;
    const saved = await loadSavedModel(result.fingerprint);
    if (token !== loadToken) return false;
    set({
      model: { loading: null, loaded: { summary: result.summary, config: result.config, fit: result.fit, fingerprint: result.fingerprint, ...folder }, error: null },
      ...resetAfter('model'),
      activity: null,
      settings: { ...scoreSlice().settings, ...saved?.settings },
      planChoice: pruneSlice().planChoice,
      demoDataset: null, // another model's load ends the demo (loadDemo sets its dataset again after its own load)
    });
    return true;
  } catch (err) {
    if (token === loadToken) set((s) => ({ model: { ...s.model, loading: null, error: { source, info: toInfo(err) } } }));
    return false;
  }
}

const dropError = (message: string) => set((s) => ({ model: { ...s.model, error: { source: 'the drop', info: { code: 'file', message } } } }));

/** What a person dropped or picked: flatten by file name and load it. */
export async function loadPickedFiles(picked: PickedFile[]): Promise<void> {
  const flat = flattenByName(picked);
  if (!flat.files.length) {
    dropError('Nothing to load: no files were dropped. Drop a Hugging Face model folder, or choose its files.');
    return;
  }
  const count = `${flat.files.length} file${flat.files.length === 1 ? '' : 's'}`;
  const name = flat.folderName ?? 'model';
  await loadModelFiles(flat.files, name, flat.folderName ? `${flat.folderName} (${count})` : `the ${count} chosen`, { paths: flat.paths, shadowed: flat.shadowed });
}

/** A drop whose folders are still being walked (see pickedFromDrop). */
export async function loadDropped(picking: Promise<PickedFile[]>): Promise<void> {
  let picked: PickedFile[];
  try {
    picked = await picking;
  } catch (e) {
    dropError(`Could not read the dropped files (${(e as Error).message}). Try "Choose folder" instead.`);
    return;
  }
  await loadPickedFiles(picked);
}

export const DEMO_MODEL_NAME = 'demo-llama-3.5M';
export const DEMO_MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
export const DEMO_DATASET_FILE = 'arc_easy_300.jsonl';

const demoUrl = (file: string) => `${import.meta.env.BASE_URL}demo/${file}`;

class DemoFetchError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`Could not fetch the demo's ${file} (${reason}).`);
  }
}

async function fetchDemoFile(file: string): Promise<Blob> {
  let res: Response;
  try {
    res = await fetch(demoUrl(file));
  } catch (e) {
    throw new DemoFetchError(file, (e as Error).message);
  }
  if (!res.ok) throw new DemoFetchError(file, `HTTP ${res.status}`);
  return res.blob();
}

/** Fetch the embedded demo model (and its dataset, for the later steps) and load it like dropped files. */
export async function loadDemo(): Promise<void> {
  const token = ++loadToken;
  const source = `the demo model (${DEMO_MODEL_NAME})`;
  set((s) => ({ model: { ...s.model, loading: { source, stage: 'Fetching the demo files' }, error: null } }));
  let files: FileEntry[];
  let dataset: DemoDataset;
  try {
    files = await Promise.all(DEMO_MODEL_FILES.map(async (name) => ({ name, blob: await fetchDemoFile(name) })));
    const blob = await fetchDemoFile(DEMO_DATASET_FILE);
    const rows = (await blob.text()).split('\n').filter((l) => l.trim()).length;
    dataset = { name: DEMO_DATASET_FILE, bytes: blob.size, rows, blob };
  } catch (e) {
    if (token !== loadToken) return;
    const subject = e instanceof DemoFetchError ? e.file : undefined;
    const message = `${(e as Error).message} The demo ships in public/demo/; serve the studio with \`npm start\` (or the built dist/ folder) so that it is reachable.`;
    set((s) => ({ model: { ...s.model, loading: null, error: { source, info: { code: 'file', message, subject } } } }));
    return;
  }
  if (token !== loadToken) return;
  const loading = loadModelFiles(files, DEMO_MODEL_NAME, source);
  const demoLoad = loadToken; // loadModelFiles took the next token; a later load changes it again
  if (!(await loading) || demoLoad !== loadToken) return;
  // The demo goes on to its dataset at once, so that "Try the demo" leads straight to scoring.
  set({ demoDataset: dataset });
  await loadDatasetFile(dataset.blob, dataset.name);
}

/** Ask the worker for the adapter again (after a lost device, or after enabling WebGPU). */
export async function reprobeGpu(): Promise<void> {
  set({ gpu: { state: 'probing' } });
  try {
    await worker().request({ type: 'probeGpu' }); // the 'adapter' event updates the store
  } catch (err) {
    set({ gpu: { state: 'unavailable', error: toInfo(err) } });
  }
}

export const dismissNotice = (): void => set({ notice: null });
