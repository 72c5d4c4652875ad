import { useState } from 'react';
import type { ErrorInfo } from '../../errors';
import { formatBytes } from '../../format';
import type { OnnxTriedEvent } from '../../worker/protocol';
import { tryOnnx } from '../actions/try-onnx';
import { useObjectUrl } from '../hooks';
import { useStudio } from '../store';
import { toInfo } from '../worker-connection';
import { ErrorBox, Progress } from './StepBits';

/**
 * "Try it" for the ONNX export: the pruned model written as the transformers.js folder, run in this tab by
 * onnxruntime-web, its greedy continuation shown beside our engine's; the folder can be downloaded as a zip.
 */
export function TryOnnxPanel() {
  const pruned = useStudio((s) => s.prune.result);
  const [prompt, setPrompt] = useState('Once upon a time');
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<OnnxTriedEvent | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const url = useObjectUrl(result?.zip);
  if (!pruned) return null;
  const run = async () => {
    setRunning(true);
    setError(null);
    try {
      setResult(await tryOnnx(prompt));
    } catch (err) {
      setError(toInfo(err));
    } finally {
      setRunning(false);
    }
  };
  return (
    <details className="try-onnx" data-testid="try-onnx">
      <summary>Try the ONNX export here (transformers.js / onnxruntime-web)</summary>
      <p className="muted small">
        Exports the pruned model as the folder transformers.js opens (<code>onnx/model.onnx</code>, fp32), runs it in this tab with onnxruntime-web,
        and shows its greedy continuation beside our engine's.
      </p>
      <div className="control-row">
        <input aria-label="Prompt for the ONNX model" data-testid="try-onnx-prompt" value={prompt} onChange={(e) => setPrompt(e.target.value)} disabled={running} />
        <button type="button" data-testid="try-onnx-run" disabled={running || !prompt.trim()} onClick={() => void run()}>
          Run it
        </button>
      </div>
      {running && <Progress step="download" fallback="Exporting ONNX" />}
      {result && (
        <>
          <table className="files-table" data-testid="try-onnx-result" data-same={String(result.same)}>
            <tbody>
              <tr><th scope="row">Prompt</th><td>{result.prompt}</td></tr>
              <tr><th scope="row">ONNX in this tab ({result.onnxSeconds.toFixed(1)} s)</th><td data-testid="try-onnx-onnx">{result.onnx}</td></tr>
              <tr><th scope="row">Our engine</th><td data-testid="try-onnx-engine">{result.engine}</td></tr>
            </tbody>
          </table>
          <p className={result.same ? 'ok-text' : 'muted small'}>{result.same ? 'The same tokens.' : 'The continuations differ (rounding can tip a near tie).'}</p>
          {url && (
            <a className="button button-secondary" href={url} download={`${result.folderName}.zip`} data-testid="try-onnx-download">
              Download {result.folderName}.zip ({formatBytes(result.zip.size)})
            </a>
          )}
        </>
      )}
      {error && <ErrorBox error={error} testId="try-onnx-error" what="run the ONNX export" next="Try a shorter prompt, or export it with the CLI." />}
    </details>
  );
}
