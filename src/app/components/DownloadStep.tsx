import { useEffect, useMemo, useState } from 'react';
import { formatBytes } from '../../format';
import { IN_MEMORY_ZIP_MAX_BYTES } from '../../export/limits';
import type { ExportedFile } from '../../worker/protocol';
import { exportFilesFor, prepareDownload, replaceFolder, saveExport, savePickers, setExportAdapter, type ReplaceQuestion } from '../actions/download';
import { useObjectUrl } from '../hooks';
import { useStudio } from '../store';
import { ErrorBox, Progress } from './StepBits';
import { TryOnnxPanel } from './TryOnnxPanel';
import { ExportFormat } from './ExportFormat';

/**
 * Step 6: the pruned checkpoint folder, its size, and three ways to save it: into a folder (File System Access),
 * as one zip streamed into a file (showSaveFilePicker), or as a zip built in memory and downloaded (small models:
 * up to IN_MEMORY_ZIP_MAX_BYTES, or whatever the size where the browser has neither picker).
 */
export function DownloadStep() {
  const pruned = useStudio((s) => s.prune.result);
  const download = useStudio((s) => s.download);
  const recovered = useStudio((s) => s.recover.result);
  const recovering = useStudio((s) => s.recover.state !== 'idle');
  const url = useObjectUrl(download.result?.zip);
  const pickers = useMemo(savePickers, []);
  const variant = useVariantFiles();
  const [question, setQuestion] = useState<ReplaceQuestion | null>(null);
  const files = variant?.files ?? pruned?.files ?? [];
  const totalBytes = variant?.totalBytes ?? pruned?.totalBytes ?? 0;
  const inMemoryTooLarge = totalBytes > IN_MEMORY_ZIP_MAX_BYTES;
  const busy = download.running || recovering;
  const saveFolder = async () => {
    setQuestion(null);
    setQuestion(await saveExport('folder'));
  };
  return (
    <section className="card" id="step-download" aria-labelledby="step-download-title" data-testid="download-step">
      <h2 id="step-download-title">6. Download</h2>
      {!pruned ? (
        <p className="muted">Apply a plan first.</p>
      ) : (
        <>
          <table className="files-table" data-testid="export-files" data-folder={variant?.folderName ?? ''}>
            <caption className="muted small">{variant ? <code>{variant.folderName}/</code> : 'The pruned checkpoint'}</caption>
            <thead>
              <tr><th scope="col">File</th><th scope="col">Size</th></tr>
            </thead>
            <tbody>
              {files.map((f) => (
                <tr key={f.name} data-testid="export-file" data-name={f.name}><td><code>{f.name}</code></td><td>{formatBytes(f.bytes)}</td></tr>
              ))}
              <tr className="total"><th scope="row">Total</th><td data-testid="export-total" data-value={totalBytes}>{formatBytes(totalBytes)}</td></tr>
            </tbody>
          </table>
          <p className="muted small">The model card (README.md) and the recipe (gradprune_recipe.json) describe how this checkpoint was made.</p>
          {recovered && <AdapterChoice steps={recovered.steps} adapterBytes={recovered.adapterBytes} />}
          <div className="control-row">
            {pickers.folder && (
              <button type="button" data-testid="save-folder" disabled={busy || question !== null} onClick={() => void saveFolder()}>
                Save into a folder…
              </button>
            )}
            {pickers.zipFile && (
              <button type="button" className="button-secondary" data-testid="save-zip-file" disabled={busy} onClick={() => void saveExport('zipFile')}>
                Save as one .zip file…
              </button>
            )}
            {(!inMemoryTooLarge || !(pickers.folder || pickers.zipFile)) &&
              (!download.result || !url ? (
                <button type="button" className={pickers.folder ? 'button-secondary' : undefined} data-testid="prepare-download" disabled={busy} onClick={() => void prepareDownload()}>
                  Prepare the download (zip in memory)
                </button>
              ) : (
                <a className="button" href={url} download={`${download.result.folderName}.zip`} data-testid="download-zip">
                  Download {download.result.folderName}.zip ({formatBytes(download.result.zip.size)})
                </a>
              ))}
          </div>
          {question && (
            <ReplacePrompt
              question={question}
              onReplace={() => {
                setQuestion(null);
                void replaceFolder(question);
              }}
              onChooseAnother={() => void saveFolder()}
            />
          )}
          <p className="muted small" data-testid="download-how">
            {pickers.folder || pickers.zipFile
              ? `Saving into a folder or a .zip file writes the checkpoint as it is made, nothing held twice in memory. ${
                  inMemoryTooLarge ? `The in-memory zip is offered up to ${formatBytes(IN_MEMORY_ZIP_MAX_BYTES)}.` : `The in-memory zip suits checkpoints up to ${formatBytes(IN_MEMORY_ZIP_MAX_BYTES)}.`
                }`
              : inMemoryTooLarge
                ? `This browser cannot save into a folder or file directly, so the zip is built in memory: ${formatBytes(pruned.totalBytes)} may be more than this tab can hold. Chrome or Edge can save it straight to disk.`
                : 'The zip is built in memory, then downloaded.'}
          </p>
          {download.running && <Progress step="download" fallback="Writing" />}
          {download.saved && <p className="ok-text" data-testid="saved-folder">Saved into {download.saved}{download.saved.endsWith('.') ? '' : '.'}</p>}
          {download.error && <ErrorBox error={download.error} testId="download-error" what="save the checkpoint" next={pickers.folder || pickers.zipFile ? 'Try another folder, the .zip file, or the in-memory zip.' : 'Try the download again.'} />}
          <ExportFormat />
          <TryOnnxPanel />
        </>
      )}
    </section>
  );
}

/** The chosen variant's files (after a recovery run: merged, or pruned + PEFT adapter/), asked of the worker whenever the choice or the result changes. */
function useVariantFiles(): { folderName: string; files: ExportedFile[]; totalBytes: number } | null {
  const pruned = useStudio((s) => s.prune.result);
  const recovered = useStudio((s) => s.recover.result);
  const adapter = useStudio((s) => s.exportAdapter);
  const [variant, setVariant] = useState<{ key: unknown[]; folderName: string; files: ExportedFile[]; totalBytes: number } | null>(null);
  useEffect(() => {
    if (!pruned) return;
    let live = true;
    const key = [pruned, recovered, adapter];
    void exportFilesFor(adapter).then((r) => live && r && setVariant({ key, folderName: r.folderName, files: r.files, totalBytes: r.totalBytes }));
    return () => {
      live = false;
    };
  }, [pruned, recovered, adapter]);
  // A list for another choice or result is never shown, not even while the new one is on its way.
  const current = variant && variant.key[0] === pruned && variant.key[1] === recovered && variant.key[2] === adapter;
  return current ? variant : null;
}

/** "The folder X already holds config.json, model.safetensors… Replace them?" */
function ReplacePrompt({ question, onReplace, onChooseAnother }: { question: ReplaceQuestion; onReplace: () => void; onChooseAnother: () => void }) {
  const shown = question.files.slice(0, 4);
  const list = question.files.length ? `${shown.join(', ')}${question.files.length > shown.length ? `… (${question.files.length} files)` : ''}` : 'a folder of that name';
  return (
    <div className="replace-prompt" role="alertdialog" aria-labelledby="replace-question" data-testid="replace-prompt">
      <p id="replace-question">
        The folder <code>{question.folder}</code> already holds {list}. Replace them?
      </p>
      <p className="muted small">The files there stay as they are until every new file is written; a failed download leaves them intact.</p>
      <div className="control-row">
        <button type="button" data-testid="replace-confirm" onClick={onReplace}>Replace</button>
        <button type="button" className="button-secondary" data-testid="replace-other" onClick={onChooseAnother}>Choose another folder</button>
      </div>
    </div>
  );
}

/** After a recovery run: the adapter merged into the weights (one ordinary checkpoint), or kept apart in PEFT's layout. */
function AdapterChoice({ steps, adapterBytes }: { steps: number; adapterBytes: number }) {
  const choice = useStudio((s) => s.exportAdapter);
  return (
    <fieldset className="adapter-choice" data-testid="adapter-choice">
      <legend>The recovery adapter ({steps} fine-tuning step{steps === 1 ? '' : 's'})</legend>
      <label className="check">
        <input type="radio" name="adapter" checked={choice === 'merged'} onChange={() => setExportAdapter('merged')} data-testid="adapter-merged" /> merge the adapter into the
        weights: one ordinary checkpoint, the same size as the pruned one (recommended)
      </label>
      <br />
      <label className="check">
        <input type="radio" name="adapter" checked={choice === 'peft'} onChange={() => setExportAdapter('peft')} data-testid="adapter-peft" /> a separate PEFT adapter: the
        pruned weights as above plus <code>adapter/</code> ({formatBytes(adapterBytes)}) for <code>PeftModel.from_pretrained</code>
      </label>
      <p className="muted small">Either way the model card lists the before / after numbers, and gradprune_recovery.json records the run.</p>
    </fieldset>
  );
}
