// Effects the studio needs, kept out of the components.

import { useEffect, useMemo, useState, type DragEvent } from 'react';
import { loadDemo } from './actions/model';
import { findInterrupted } from './actions/resume';
import { refreshMemoryEstimate, restoreSavedRun } from './actions/score';
import { useStudio } from './store';
import { startStudioWorker } from './worker-client';
import { connectWorker } from './worker-connection';

/** Start the engine worker for the page's lifetime and route its events into the store; `?demo` loads the demo. */
export function useStudioWorker(): void {
  useEffect(() => {
    const client = startStudioWorker();
    const disconnect = connectWorker(client);
    if (new URLSearchParams(window.location.search).has('demo')) void loadDemo();
    return () => {
      disconnect();
      client.dispose();
    };
  }, []);
}

/** Keep the worker's GPU memory estimate in step with the loaded model and the scoring settings. */
export function useMemoryEstimate(): void {
  const model = useStudio((s) => s.model.loaded?.summary.name);
  const settings = useStudio((s) => s.settings);
  useEffect(() => {
    if (model) void refreshMemoryEstimate();
  }, [model, settings]);
}

/**
 * When the loaded model and dataset are a pair seen before, offer its saved scores and plan choice back, and an
 * interrupted scoring run the worker kept (to continue from its last snapshot); with a pruned model, an interrupted
 * recovery run of it.
 */
export function useSavedRun(): void {
  const model = useStudio((s) => s.model.loaded?.fingerprint);
  const dataset = useStudio((s) => s.dataset.info);
  useEffect(() => {
    if (!model || !dataset) return;
    void restoreSavedRun();
    void findInterrupted('score');
  }, [model, dataset]);
  const pruned = useStudio((s) => s.prune.result);
  useEffect(() => {
    if (pruned) void findInterrupted('recover');
  }, [pruned]);
}

/** An object URL for a blob while it is shown (none for an empty one), revoked when it goes. */
export function useObjectUrl(blob: Blob | null | undefined): string | null {
  const url = useMemo(() => (blob && blob.size > 0 ? URL.createObjectURL(blob) : null), [blob]);
  useEffect(() => () => void (url && URL.revokeObjectURL(url)), [url]);
  return url;
}

/**
 * A text box's draft of a committed value and the problem with it: typing edits the draft only; a new committed
 * value (applied, or restored from the last visit) replaces the draft and clears the problem.
 */
export function useDraft(committed: string) {
  const [text, setText] = useState(committed);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setText(committed);
    setProblem(null);
  }, [committed]);
  return { text, setText, problem, setProblem };
}

/**
 * Drag-and-drop of files (or folders) onto an element: props to spread, and whether something hovers over it.
 * `onDrop` gets the DataTransfer inside the handler (entries must be read there).
 */
export function useFileDrop(disabled: boolean, onDrop: (data: DataTransfer) => void) {
  const [over, setOver] = useState(false);
  const allow = (e: DragEvent) => {
    if (!Array.from(e.dataTransfer.types).includes('Files')) return false;
    e.preventDefault();
    e.dataTransfer.dropEffect = disabled ? 'none' : 'copy';
    return true;
  };
  return {
    over,
    dropProps: {
      onDragEnter: (e: DragEvent) => allow(e) && setOver(true),
      onDragOver: (e: DragEvent) => void allow(e),
      onDragLeave: (e: DragEvent) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setOver(false);
      },
      onDrop: (e: DragEvent) => {
        e.preventDefault();
        setOver(false);
        if (!disabled) onDrop(e.dataTransfer);
      },
    },
  };
}
