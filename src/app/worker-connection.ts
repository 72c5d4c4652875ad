// The page's one worker client: connected for the page's lifetime (./hooks.ts), its events routed into the store,
// and used by every action to send requests.

import type { ErrorInfo } from '../errors';
import { WorkerRequestError, type WorkerClient } from './worker-client';
import { applyWorkerEvent } from './worker-events';

let client: WorkerClient | null = null;

/** Route the worker's events into the store and make it the one the actions use. Returns the disconnect function. */
export function connectWorker(c: WorkerClient): () => void {
  client = c;
  const unsubscribe = c.subscribe(applyWorkerEvent);
  return () => {
    unsubscribe();
    if (client === c) client = null;
  };
}

export function worker(): WorkerClient {
  if (!client) throw new Error('the studio worker is not running');
  return client;
}

/** What a failed request says to the person: the worker's own ErrorInfo, or (anything else) a bug in the studio. */
export const toInfo = (err: unknown): ErrorInfo =>
  err instanceof WorkerRequestError
    ? err.info
    : { code: 'internal', message: `Unexpected error: ${err instanceof Error ? err.message : String(err)}. This is a bug in GradPrune Studio; please report it.` };
