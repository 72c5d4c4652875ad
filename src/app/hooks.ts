// Effects the studio needs, kept out of the components.

import { useEffect, useState, type DragEvent } from 'react';
import { connectWorker, loadDemo, loadDropped } from './actions';
import { pickedFromDrop } from './files';
import { restoreSession } from './persist';
import { startStudioWorker } from './worker-client';

/** Start the engine worker for the page's lifetime and route its events into the store; `?demo` loads the demo. */
export function useStudioWorker(): void {
  useEffect(() => {
    const client = startStudioWorker();
    const disconnect = connectWorker(client);
    void restoreSession();
    if (new URLSearchParams(window.location.search).has('demo')) void loadDemo();
    return () => {
      disconnect();
      client.dispose();
    };
  }, []);
}

/** Drag-and-drop of folders or files onto an element: props to spread, and whether something hovers over it. */
export function useFileDrop(disabled: boolean) {
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
        if (disabled) return;
        // Entries must be read inside the handler; the walk over folders continues after it.
        void loadDropped(pickedFromDrop(e.dataTransfer));
      },
    },
  };
}
