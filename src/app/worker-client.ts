// The page's side of the worker protocol: typed requests that resolve with their result event (or reject with
// the worker's ErrorInfo), and a stream of every event for the store to render.

import type { ErrorInfo } from '../errors';
import { isWorkerEvent, RESULT_EVENT_TYPE, type ResultOf, type WorkerEvent, type WorkerRequest } from '../worker/protocol';

/** The part of a Worker the client uses (a Worker, or a fake in tests). */
export interface WorkerPort {
  postMessage(message: unknown): void;
  addEventListener(type: 'message' | 'error' | 'messageerror', listener: (ev: Event) => void): void;
  terminate?(): void;
}

/** A request the worker answered with an 'error' event. */
export class WorkerRequestError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
    this.name = 'WorkerRequestError';
  }
}

export interface WorkerClient {
  request<R extends WorkerRequest>(req: R): Promise<ResultOf[R['type']]>;
  /** Every event, in order, including those that also settle a request. Returns the unsubscribe function. */
  subscribe(listener: (event: WorkerEvent) => void): () => void;
  dispose(): void;
}

interface Pending {
  resultType: WorkerEvent['type'];
  resolve(event: WorkerEvent): void;
  reject(err: WorkerRequestError): void;
}

export function createWorkerClient(port: WorkerPort): WorkerClient {
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Set<(event: WorkerEvent) => void>();

  const emit = (event: WorkerEvent) => {
    for (const l of listeners) l(event);
  };

  const failAll = (info: ErrorInfo) => {
    emit({ type: 'error', requestId: null, error: info });
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(new WorkerRequestError(info));
    }
  };

  port.addEventListener('message', (ev) => {
    const data = (ev as MessageEvent).data;
    if (!isWorkerEvent(data)) return;
    emit(data);
    if (data.requestId === null) return;
    const p = pending.get(data.requestId);
    if (!p) return;
    if (data.type === 'error') {
      pending.delete(data.requestId);
      p.reject(new WorkerRequestError(data.error));
    } else if (data.type === p.resultType) {
      pending.delete(data.requestId);
      p.resolve(data);
    }
  });
  // The worker script itself failed (did not load, or threw at top level): every open request is lost.
  port.addEventListener('error', (ev) => {
    const message = (ev as ErrorEvent).message || 'the worker script could not start';
    failAll({ code: 'internal', message: `The studio's worker stopped: ${message}. Reload the page; if it happens again, please report it.` });
  });
  port.addEventListener('messageerror', () => {
    failAll({ code: 'internal', message: 'A message from the worker could not be read. Reload the page.' });
  });

  return {
    request<R extends WorkerRequest>(req: R): Promise<ResultOf[R['type']]> {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, {
          resultType: RESULT_EVENT_TYPE[req.type],
          resolve: resolve as (event: WorkerEvent) => void,
          reject,
        });
        port.postMessage({ ...req, id });
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    dispose() {
      port.terminate?.();
      failAll({ code: 'cancelled', message: 'The worker was closed.' });
      listeners.clear();
    },
  };
}

/** The studio's worker. Vite bundles ../worker/worker.ts as a module worker from this exact expression. */
export function startStudioWorker(): WorkerClient {
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'gradprune-engine' });
  return createWorkerClient(worker);
}
