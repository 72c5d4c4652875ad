import { useEffect, useState } from 'react';
import type { ErrorInfo } from '../../errors';
import type { GgufDType } from '../../export/gguf/gguf';
import { IN_MEMORY_ZIP_MAX_BYTES } from '../../export/limits';
import { formatBytes } from '../../format';
import type { GgufExportedEvent, GgufSizesEvent } from '../../worker/protocol';
import { useObjectUrl } from '../hooks';
import { toInfo, worker } from '../worker-connection';
import { ErrorBox } from './StepBits';

/** The GGUF choices and their sizes (or why there are none). */
export type GgufSizes = Pick<GgufSizesEvent, 'options' | 'refused'>;

type SaveFilePicker = (opts: { suggestedName: string; types: { description: string; accept: Record<string, string[]> }[] }) => Promise<FileSystemFileHandle>;

/**
 * Step 6, for llama.cpp / Ollama / LM Studio: the pruned (or recovered) model as one GGUF file, f16 or Q8_0, each
 * with its size (asked of the worker by the Download step) before anything is written. Saved straight into a picked
 * file where the browser can (showSaveFilePicker: streamed, nothing held in memory), else built in memory for models
 * up to the in-memory limit.
 */
export function GgufDownload({ sizes }: { sizes: GgufSizes | null }) {
  const [dtype, setDtype] = useState<GgufDType>('f16');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Pick<GgufExportedEvent, 'fileName' | 'blob' | 'savedTo'> | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const url = useObjectUrl(result?.blob);
  const picker = typeof window !== 'undefined' ? (window as unknown as { showSaveFilePicker?: SaveFilePicker }).showSaveFilePicker : undefined;
  useEffect(() => setResult(null), [sizes]); // a file for another model is never offered

  const chosen = sizes?.options.find((o) => o.dtype === dtype);
  const inMemory = !!chosen && chosen.bytes <= IN_MEMORY_ZIP_MAX_BYTES;

  const save = async (toFile: boolean) => {
    setError(null);
    setResult(null);
    try {
      let target: { kind: 'memory' } | { kind: 'file'; handle: FileSystemFileHandle } = { kind: 'memory' };
      if (toFile) {
        const handle = await picker!({ suggestedName: chosen!.fileName, types: [{ description: 'GGUF model', accept: { 'application/octet-stream': ['.gguf'] } }] }).catch((e: Error) => {
          if (e.name === 'AbortError') return null;
          throw e;
        });
        if (!handle) return;
        target = { kind: 'file', handle };
      }
      setBusy(true);
      setResult(await worker().request({ type: 'exportGguf', dtype, target }));
    } catch (e) {
      setError(toInfo(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="export-format" data-testid="export-gguf">
      <h3>GGUF for llama.cpp, Ollama and LM Studio</h3>
      {sizes?.refused ? (
        <p className="muted" data-testid="gguf-refused">{sizes.refused}</p>
      ) : !sizes ? (
        <p className="muted small">Working out the GGUF sizes…</p>
      ) : (
        <>
          <div className="control-row" role="radiogroup" aria-label="GGUF weights">
            {sizes.options.map((o) => (
              <label key={o.dtype} data-testid="gguf-option" data-dtype={o.dtype} data-bytes={o.bytes}>
                <input type="radio" name="gguf-dtype" checked={dtype === o.dtype} disabled={busy} onChange={() => (setDtype(o.dtype), setResult(null))} />{' '}
                {o.dtype === 'f16' ? 'f16' : 'q8_0 (8-bit)'} — {formatBytes(o.bytes)}
              </label>
            ))}
          </div>
          <div className="control-row">
            {picker && (
              <button type="button" data-testid="save-gguf" disabled={busy} onClick={() => void save(true)}>
                Save {chosen?.fileName ?? 'the .gguf file'}…
              </button>
            )}
            {inMemory &&
              (!result || !url ? (
                <button type="button" className={picker ? 'button-secondary' : undefined} data-testid="prepare-gguf" disabled={busy} onClick={() => void save(false)}>
                  Prepare the .gguf download (in memory)
                </button>
              ) : (
                <a className="button" href={url} download={result.fileName} data-testid="download-gguf">
                  Download {result.fileName} ({formatBytes(result.blob.size)})
                </a>
              ))}
          </div>
          {!picker && !inMemory && chosen && (
            <p className="muted small">At {formatBytes(chosen.bytes)} this file is too large to build in memory; Chrome or Edge can save it straight to disk, or run `gradprune export --format gguf` on the downloaded checkpoint.</p>
          )}
        </>
      )}
      {busy && <p className="muted small" data-testid="gguf-writing">Writing the GGUF file…</p>}
      {result?.savedTo && <p className="ok-text" data-testid="gguf-saved">Saved {result.savedTo}.</p>}
      {error && <ErrorBox error={error} testId="gguf-error" what="write the GGUF file" next="Try again, or export the checkpoint and run `gradprune export --format gguf` on it." />}
    </div>
  );
}
