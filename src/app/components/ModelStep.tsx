import { DEMO_DATASET_FILE, DEMO_MODEL_NAME, loadDemo } from '../actions/model';
import { formatBytes, formatExact } from '../../format';
import { useStudio } from '../store';
import { DropZone } from './DropZone';

/** Step 1: hand the studio a model, by drop, picker or the built-in demo. */
export function ModelStep() {
  const loading = useStudio((s) => s.model.loading);
  return (
    <section className="card" id="step-model" aria-labelledby="step-model-title">
      <h2 id="step-model-title">1. Model</h2>
      <p className="muted">
        A Hugging Face Llama, Mistral, Qwen2 or Qwen3 checkpoint: <code>config.json</code>, <code>model.safetensors</code> (or shards with{' '}
        <code>model.safetensors.index.json</code>), <code>tokenizer.json</code>, <code>tokenizer_config.json</code>. Files stay on this
        machine.
      </p>
      <DropZone />
      <div className="demo-row">
        <button type="button" data-testid="demo-button" disabled={loading !== null} onClick={() => void loadDemo()}>
          Try the demo
        </button>
        <span className="muted">
          {DEMO_MODEL_NAME}: a 3.5M-parameter Llama (8 layers, f16, 7 MB) with {DEMO_DATASET_FILE}.
        </span>
      </div>
      <LoadStatus />
      <LoadError />
      <DemoDatasetNote />
    </section>
  );
}

function LoadStatus() {
  const loading = useStudio((s) => s.model.loading);
  if (!loading) return null;
  return (
    <p className="status" role="status" data-testid="load-status">
      <span className="spinner" aria-hidden="true" /> {loading.stage}…
    </p>
  );
}

function LoadError() {
  const error = useStudio((s) => s.model.error);
  if (!error) return null;
  return (
    <div className="load-error" role="alert" data-testid="load-error" data-code={error.info.code} data-subject={error.info.subject ?? ''}>
      <strong>Could not load {error.source}.</strong>
      <p data-testid="load-error-message">{error.info.message}</p>
      {error.info.subject && !error.info.message.includes(error.info.subject) && (
        <p className="error-subject">
          About: <code data-testid="load-error-subject">{error.info.subject}</code>
        </p>
      )}
      <p className="muted">Fix the files and load them again, or load another model.</p>
    </div>
  );
}

function DemoDatasetNote() {
  const dataset = useStudio((s) => s.demoDataset);
  if (!dataset) return null;
  return (
    <p className="muted" data-testid="demo-dataset">
      The demo's dataset goes to step 2: <code>{dataset.name}</code>,{' '}
      <span data-testid="demo-dataset-rows" data-value={dataset.rows}>
        {formatExact(dataset.rows)}
      </span>{' '}
      questions, <span title={`${formatExact(dataset.bytes)} bytes`}>{formatBytes(dataset.bytes)}</span>.
    </p>
  );
}
