// Step 2: a dataset file read with the detected format, then read again with the person's format, columns, split.

import type { DatasetOptions } from '../../worker/protocol';
import { DEFAULT_DATASET_OPTIONS } from '../defaults';
import { resetAfter, useStudio, type StudioState } from '../store';
import { toInfo, worker } from '../worker-connection';
import { withActivity } from './job';

const set = useStudio.setState;
const get = useStudio.getState;

/** The dataset options now in force: the person's last choices (or the defaults), with the scoring sequence length. */
function datasetOptions(overrides: Partial<DatasetOptions> = {}): DatasetOptions {
  const current = get().dataset.info?.options;
  return { ...DEFAULT_DATASET_OPTIONS, ...current, maxSeqLen: get().settings.seqLen, ...overrides };
}

/**
 * A new dataset makes the steps after it stale, scores restored from the last visit too: they belong to one (model,
 * dataset) pair, and come back when that pair is loaded again (restoreSavedRun).
 */
const staleAfterDataset = (_s: StudioState): Partial<StudioState> => resetAfter('dataset');

/** Read a dataset file (a drop, a pick or the demo's) with the detected format. */
export async function loadDatasetFile(file: Blob, fileName: string): Promise<void> {
  set((s) => ({ dataset: { loading: fileName, info: null, error: null }, ...staleAfterDataset(s) }));
  // Format, columns, template and EOS belong to a file: a new file is detected afresh (split and length are kept).
  const { format: _f, columns: _c, multipleChoiceSchema: _s, template: _t, appendEos: _e, ...kept } = datasetOptions();
  try {
    const result = await withActivity('dataset', `Reading ${fileName}`, () => worker().request({ type: 'loadDataset', file, fileName, options: kept }));
    set({ dataset: { loading: null, info: result.dataset, error: null } });
  } catch (err) {
    set({ dataset: { loading: null, info: null, error: toInfo(err) } });
  }
}

/** Read the same file again with another format / mapping / split / length. */
export async function setDatasetOptions(overrides: Partial<DatasetOptions>): Promise<void> {
  const info = get().dataset.info;
  if (!info) return;
  const options = datasetOptions(overrides);
  set((s) => ({ dataset: { ...s.dataset, loading: info.fileName, error: null }, ...staleAfterDataset(s) }));
  try {
    const result = await withActivity('dataset', `Reading ${info.fileName}`, () => worker().request({ type: 'setFormat', options }));
    set({ dataset: { loading: null, info: result.dataset, error: null } });
  } catch (err) {
    // The previous reading stays on screen; the error says why the new one failed.
    set((s) => ({ dataset: { ...s.dataset, loading: null, error: toInfo(err) } }));
  }
}
