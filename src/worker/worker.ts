// The studio's one dedicated module Worker: it owns the GPU device and every piece of engine state.
// The page talks to it only through the messages of ./protocol.ts; see ./host.ts for what it does with them.

import { createWorkerHost } from './host';
import type { WorkerEvent } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (event: WorkerEvent) => scope.postMessage(event);
const host = createWorkerHost(post);

// Nothing may vanish silently: a failure outside any request becomes an 'error' event for the page to show.
scope.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  host.reportStray(ev.reason);
});
scope.addEventListener('error', (ev) => {
  ev.preventDefault();
  host.reportStray(ev.error ?? new Error(ev.message));
});
scope.addEventListener('message', (ev: MessageEvent) => void host.handle(ev.data));

void host.start();
