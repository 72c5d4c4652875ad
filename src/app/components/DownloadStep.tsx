import { useMemo } from 'react';
import { formatBytes } from '../../format';
import { IN_MEMORY_ZIP_MAX_BYTES } from '../../export/limits';
import { prepareDownload, saveExport, savePickers, setExportAdapter } from '../actions/download';
import { useObjectUrl } from '../hooks';
import { useStudio } from '../store';
import { ErrorBox, Progress } from './StepBits';
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
  const inMemoryTooLarge = (pruned?.totalBytes ?? 0) > IN_MEMORY_ZIP_MAX_BYTES;
  return (
    <section className="card" id="step-download" aria-labelledby="step-download-title" data-testid="download-step">
      <h2 id="step-download-title">6. Download</h2>
      {!pruned ? (
        <p className="muted">Apply a plan first.</p>
      ) : (
        <>
          <table className="files-table" data-testid="export-files">
            <thead>
              <tr><th scope="col">File</th><th scope="col">Size</th></tr>
            </thead>
            <tbody>
              {pruned.files.map((f) => (
                <tr key={f.name}><td><code>{f.name}</code></td><td>{formatBytes(f.bytes)}</td></tr>
              ))}
              <tr className="total"><th scope="row">Total</th><td data-testid="export-total" data-value={pruned.totalBytes}>{formatBytes(pruned.totalBytes)}</td></tr>
            </tbody>
          </table>
          <p className="muted small">The model card (README.md) and the recipe (gradprune_recipe.json) describe how this checkpoint was made.</p>
          {recovered && <AdapterChoice steps={recovered.steps} adapterBytes={recovered.adapterBytes} />}
          <div className="control-row">
            {pickers.folder && (
              <button type="button" data-testid="save-folder" disabled={download.running || recovering} onClick={() => void saveExport('folder')}>
                Save into a folder…
              </button>
            )}
            {pickers.zipFile && (
              <button type="button" className="button-secondary" data-testid="save-zip-file" disabled={download.running || recovering} onClick={() => void saveExport('zipFile')}>
                Save as one .zip file…
              </button>
            )}
            {(!inMemoryTooLarge || !(pickers.folder || pickers.zipFile)) &&
              (!download.result || !url ? (
                <button type="button" className={pickers.folder ? 'button-secondary' : undefined} data-testid="prepare-download" disabled={download.running || recovering} onClick={() => void prepareDownload()}>
                  Prepare the download (zip in memory)
                </button>
              ) : (
                <a className="button" href={url} download={`${download.result.folderName}.zip`} data-testid="download-zip">
                  Download {download.result.folderName}.zip ({formatBytes(download.result.zip.size)})
                </a>
              ))}
          </div>
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
          {download.saved && <p className="ok-text" data-testid="saved-folder">Saved into {download.saved}.</p>}
          {download.error && <ErrorBox error={download.error} testId="download-error" what="save the checkpoint" next={pickers.folder || pickers.zipFile ? 'Try another folder, the .zip file, or the in-memory zip.' : 'Try the download again.'} />}
          <ExportFormat />
        </>
      )}
    </section>
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
