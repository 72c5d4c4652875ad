import type { ChangeEvent } from 'react';
import { loadDatasetFile } from '../actions/dataset';
import { useFileDrop } from '../hooks';
import { useStudio } from '../store';
import { DatasetView } from './DatasetView';
import { ErrorBox, Progress } from './StepBits';

/** Step 2: the downstream dataset, as the model will see it. */
export function DatasetStep() {
  const hasModel = useStudio((s) => s.model.loaded !== null);
  const { loading, info, error } = useStudio((s) => s.dataset);
  const demo = useStudio((s) => s.demoDataset);
  // A new dataset while another step runs on the GPU would leave that step's result without its data.
  const otherJob = useStudio((s) => s.activity !== null && s.activity.step !== 'dataset');
  const busy = loading !== null || otherJob;
  const { over, dropProps } = useFileDrop(busy, (data) => {
    const file = data.files[0];
    if (file) void loadDatasetFile(file, file.name);
  });
  const onPick = (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.currentTarget.files?.[0];
    e.currentTarget.value = '';
    if (file) void loadDatasetFile(file, file.name);
  };
  return (
    <section className="card" id="step-dataset" aria-labelledby="step-dataset-title" data-testid="dataset-step">
      <h2 id="step-dataset-title">2. Dataset</h2>
      {!hasModel ? (
        <p className="muted">Load a model first: the dataset is tokenized with its tokenizer.</p>
      ) : (
        <>
          <div className={`drop-zone drop-zone-small${over ? ' drop-zone-over' : ''}`} data-testid="dataset-drop" {...dropProps}>
            <p className="drop-hint">Drop a dataset file: JSON, JSON Lines, CSV/TSV or Parquet</p>
            <div className="drop-buttons">
              <label className={`button${busy ? ' button-disabled' : ''}`}>
                Choose dataset file
                <input type="file" className="visually-hidden" data-testid="dataset-input" aria-label="Choose a dataset file" disabled={busy} onChange={onPick} />
              </label>
              {demo && (
                <button type="button" className="button-secondary" data-testid="demo-dataset-button" disabled={busy} onClick={() => void loadDatasetFile(demo.blob, demo.name)}>
                  Use the demo dataset ({demo.name})
                </button>
              )}
            </div>
          </div>
          {loading && <Progress step="dataset" fallback={`Reading ${loading}`} />}
          {error && <ErrorBox error={error} testId="dataset-error" what="read the dataset" next="Choose another format or column mapping below, or fix the file." />}
          {info && <DatasetView info={info} busy={busy} />}
        </>
      )}
    </section>
  );
}
