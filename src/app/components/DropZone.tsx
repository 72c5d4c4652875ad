import { useId, type ChangeEvent } from 'react';
import { loadDropped, loadPickedFiles } from '../actions/model';
import { pickedFromDrop, pickedFromInput } from '../files';
import { useFileDrop } from '../hooks';
import { useStudio } from '../store';

// React passes unknown lowercase attributes through; TypeScript's DOM types lack these two.
const DIRECTORY_ATTRS = { webkitdirectory: '', directory: '' } as Record<string, string>;

function onPick(e: ChangeEvent<HTMLInputElement>) {
  const input = e.currentTarget;
  const picked = input.files ? pickedFromInput(input.files) : [];
  input.value = ''; // picking the same folder again must fire change again
  if (picked.length) void loadPickedFiles(picked);
}

/** Drop a model folder or its files here, or pick them; the buttons are real labelled inputs (keyboard reachable). */
export function DropZone() {
  const busy = useStudio((s) => s.model.loading !== null);
  // The folders are walked after the handler returns; the entries are taken inside it.
  const { over, dropProps } = useFileDrop(busy, (data) => void loadDropped(pickedFromDrop(data)));
  const hintId = useId();
  return (
    <div
      className={`drop-zone${over ? ' drop-zone-over' : ''}`}
      data-testid="drop-zone"
      role="group"
      aria-label="Model files"
      aria-describedby={hintId}
      aria-busy={busy}
      {...dropProps}
    >
      <p id={hintId} className="drop-hint">
        Drop a model folder here, or its files
      </p>
      <div className="drop-buttons">
        <label className={`button${busy ? ' button-disabled' : ''}`}>
          Choose folder
          <input
            type="file"
            className="visually-hidden"
            data-testid="input-folder"
            aria-label="Choose a model folder"
            disabled={busy}
            onChange={onPick}
            {...DIRECTORY_ATTRS}
          />
        </label>
        <label className={`button button-secondary${busy ? ' button-disabled' : ''}`}>
          Choose files
          <input type="file" className="visually-hidden" data-testid="input-files" aria-label="Choose model files" multiple disabled={busy} onChange={onPick} />
        </label>
      </div>
    </div>
  );
}
