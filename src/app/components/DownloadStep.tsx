import { useEffect, useMemo, useState } from 'react';
import { formatBytes } from '../../format';
import { IN_MEMORY_ZIP_MAX_BYTES } from '../../export/limits';
import type { ExportedFile, FolderFormat } from '../../worker/protocol';
import type { DownloadFormat } from '../slices';
import { exportFilesFor, prepareDownload, replaceFolder, saveExport, savePickers, setExportAdapter, setExportFormat, type ReplaceQuestion } from '../actions/download';
import { useObjectUrl } from '../hooks';
import { useStudio } from '../store';
import { ErrorBox, Progress } from './StepBits';
import { TryOnnxPanel } from './TryOnnxPanel';
import { GgufDownload, type GgufSizes } from './GgufDownload';
import { toInfo, worker } from '../worker-connection';

/**
 * Step 6: the format (Hugging Face safetensors, transformers.js ONNX, GGUF), each with its size before anything is
 * written, then that format's ways to save it; and the "try it" panel for the ONNX export.
 */
export function DownloadStep() {
  const pruned = useStudio((s) => s.prune.result);
  const format = useStudio((s) => s.exportFormat);
  const sizes = useFormatSizes();
  return (
    <section className="card" id="step-download" aria-labelledby="step-download-title" data-testid="download-step">
      <h2 id="step-download-title">6. Download</h2>
      {!pruned ? (
        <p className="muted">Apply a plan first.</p>
      ) : (
        <>
          <FormatChoice sizes={sizes} />
          {format === 'gguf' ? <GgufDownload sizes={sizes.gguf} /> : <FolderDownload format={format} />}
          <TryOnnxPanel />
        </>
      )}
    </section>
  );
}

/** A folder format's size, or why the model cannot be written so; null while the worker works it out. */
type FolderSize = { bytes: number } | { refused: string } | null;
interface FormatSizes {
  safetensors: FolderSize;
  onnx: FolderSize;
  gguf: GgufSizes | null;
}

const FORMAT_LABELS: Record<DownloadFormat, { title: string; detail: string }> = {
  safetensors: { title: 'Hugging Face checkpoint (safetensors)', detail: 'for transformers, PEFT, vLLM and anything that loads Hugging Face checkpoints' },
  onnx: { title: 'ONNX for transformers.js', detail: 'onnx/model.onnx (fp32) and onnx/model_fp16.onnx, for AutoModelForCausalLM and pipeline() in the browser or Node' },
  gguf: { title: 'GGUF', detail: 'one file for llama.cpp, Ollama and LM Studio (f16 or 8-bit q8_0)' },
};

/** The three formats, each with what it is for and its size, before anything is written. */
function FormatChoice({ sizes }: { sizes: FormatSizes }) {
  const format = useStudio((s) => s.exportFormat);
  const busy = useStudio((s) => s.download.running);
  const sizeText = (f: DownloadFormat): { text: string; bytes?: number } => {
    if (f === 'gguf') {
      const g = sizes.gguf;
      if (!g) return { text: 'working out the size…' };
      if (g.refused) return { text: 'not available for this model' };
      return { text: g.options.map((o) => `${o.dtype} ${formatBytes(o.bytes)}`).join(' · '), bytes: g.options[0]?.bytes };
    }
    const size = sizes[f];
    if (!size) return { text: 'working out the size…' };
    return 'bytes' in size ? { text: formatBytes(size.bytes), bytes: size.bytes } : { text: 'not available for this model' };
  };
  return (
    <fieldset className="format-choice" data-testid="format-choice">
      <legend>Format</legend>
      {(Object.keys(FORMAT_LABELS) as DownloadFormat[]).map((f) => {
        const size = sizeText(f);
        return (
          <label key={f} className="check" data-testid="format-option" data-format={f} data-bytes={size.bytes ?? ''}>
            <input type="radio" name="download-format" checked={format === f} disabled={busy} onChange={() => setExportFormat(f)} />{' '}
            <strong>{FORMAT_LABELS[f].title}</strong> — <span data-testid={`format-size-${f}`}>{size.text}</span>
            <br />
            <span className="muted small">{FORMAT_LABELS[f].detail}</span>
          </label>
        );
      })}
    </fieldset>
  );
}

/** Every format's size for the current model and adapter choice, asked of the worker whenever they change. */
function useFormatSizes(): FormatSizes {
  const pruned = useStudio((s) => s.prune.result);
  const recovered = useStudio((s) => s.recover.result);
  const adapter = useStudio((s) => s.exportAdapter);
  const [sizes, setSizes] = useState<FormatSizes>({ safetensors: null, onnx: null, gguf: null });
  useEffect(() => {
    setSizes({ safetensors: null, onnx: null, gguf: null });
    if (!pruned) return;
    let live = true;
    const update = (patch: Partial<FormatSizes>) => live && setSizes((s) => ({ ...s, ...patch }));
    const refused = (e: unknown) => ({ refused: toInfo(e).message });
    for (const format of ['safetensors', 'onnx'] as const) {
      worker()
        .request({ type: 'exportFiles', adapter, format })
        .then((r) => update({ [format]: { bytes: r.totalBytes } }), (e) => update({ [format]: refused(e) }));
    }
    worker()
      .request({ type: 'ggufSizes' })
      .then((r) => update({ gguf: r }), (e) => update({ gguf: { options: [], refused: toInfo(e).message } }));
    return () => {
      live = false;
    };
  }, [pruned, recovered, adapter]);
  return sizes;
}

/**
 * A folder format (Hugging Face checkpoint or transformers.js ONNX): its files and sizes, and three ways to save it:
 * into a folder (File System Access), as one zip streamed into a file (showSaveFilePicker), or as a zip built in
 * memory and downloaded (small models: up to IN_MEMORY_ZIP_MAX_BYTES, or whatever the size where the browser has
 * neither picker).
 */
function FolderDownload({ format }: { format: FolderFormat }) {
  const pruned = useStudio((s) => s.prune.result)!;
  const download = useStudio((s) => s.download);
  const recovered = useStudio((s) => s.recover.result);
  const recovering = useStudio((s) => s.recover.state !== 'idle');
  const url = useObjectUrl(download.result?.zip);
  const pickers = useMemo(savePickers, []);
  const variant = useVariantFiles(format);
  const [question, setQuestion] = useState<ReplaceQuestion | null>(null);
  // Until the worker answers, the safetensors table shows what applyPrune reported; the ONNX one waits.
  const files = variant?.files ?? (format === 'safetensors' ? pruned.files : []);
  const totalBytes = variant?.totalBytes ?? (format === 'safetensors' ? pruned.totalBytes : 0);
  const inMemoryTooLarge = totalBytes > IN_MEMORY_ZIP_MAX_BYTES;
  const busy = download.running || recovering;
  const saveFolder = async () => {
    setQuestion(null);
    setQuestion(await saveExport('folder'));
  };
  return (
    <>
      <table className="files-table" data-testid="export-files" data-folder={variant?.folderName ?? ''} data-format={format}>
        <caption className="muted small">{variant ? <code>{variant.folderName}/</code> : format === 'safetensors' ? 'The pruned checkpoint' : 'Working out the ONNX files…'}</caption>
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
      {format === 'safetensors' ? (
        <p className="muted small">The model card (README.md) and the recipe (gradprune_recipe.json) describe how this checkpoint was made.</p>
      ) : (
        <p className="muted small">The folder transformers.js opens with <code>AutoModelForCausalLM.from_pretrained</code>{recovered ? ', the recovery adapter merged into the weights' : ''}; weights above 2 GiB go to external data files beside each model file.</p>
      )}
      {recovered && format === 'safetensors' && <AdapterChoice steps={recovered.steps} adapterBytes={recovered.adapterBytes} />}
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
            ? `This browser cannot save into a folder or file directly, so the zip is built in memory: ${formatBytes(totalBytes)} may be more than this tab can hold. Chrome or Edge can save it straight to disk.`
            : 'The zip is built in memory, then downloaded.'}
      </p>
      {download.running && <Progress step="download" fallback="Writing" />}
      {download.saved && <p className="ok-text" data-testid="saved-folder">Saved into {download.saved}{download.saved.endsWith('.') ? '' : '.'}</p>}
      {download.error && <ErrorBox error={download.error} testId="download-error" what="save the checkpoint" next={pickers.folder || pickers.zipFile ? 'Try another folder, the .zip file, or the in-memory zip.' : 'Try the download again.'} />}
    </>
  );
}

/** The chosen variant's files (a format; after a recovery run: merged, or pruned + PEFT adapter/), asked of the worker whenever the choice or the result changes. */
function useVariantFiles(format: FolderFormat): { folderName: string; files: ExportedFile[]; totalBytes: number } | null {
  const pruned = useStudio((s) => s.prune.result);
  const recovered = useStudio((s) => s.recover.result);
  const adapter = useStudio((s) => s.exportAdapter);
  const [variant, setVariant] = useState<{ key: unknown[]; folderName: string; files: ExportedFile[]; totalBytes: number } | null>(null);
  useEffect(() => {
    if (!pruned) return;
    let live = true;
    const key = [pruned, recovered, adapter, format];
    void exportFilesFor(adapter, format).then((r) => live && r && setVariant({ key, folderName: r.folderName, files: r.files, totalBytes: r.totalBytes }));
    return () => {
      live = false;
    };
  }, [pruned, recovered, adapter, format]);
  // A list for another choice or result is never shown, not even while the new one is on its way.
  const current = variant && variant.key[0] === pruned && variant.key[1] === recovered && variant.key[2] === adapter && variant.key[3] === format;
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
