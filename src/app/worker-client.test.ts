import { describe, expect, it } from 'vitest';
import type { WorkerEvent } from '../worker/protocol';
import { createWorkerClient, WorkerRequestError, type WorkerPort } from './worker-client';

/** A stand-in for a Worker: records what the page posts and lets the test play the worker's events. */
function fakePort() {
  const posted: Array<{ id: number; type: string }> = [];
  const handlers: Record<string, Array<(ev: Event) => void>> = {};
  const port: WorkerPort = {
    postMessage: (m) => posted.push(m as { id: number; type: string }),
    addEventListener: (type, l) => void (handlers[type] ??= []).push(l),
  };
  const fire = (type: string, ev: object) => handlers[type]?.forEach((h) => h(ev as Event));
  return { port, posted, emit: (data: unknown) => fire('message', { data }), crash: (message: string) => fire('error', { message }) };
}

const summary = { name: 'm' } as never;

describe('worker client', () => {
  it('numbers requests and resolves each with its own result event', async () => {
    const { port, posted, emit } = fakePort();
    const client = createWorkerClient(port);
    const a = client.request({ type: 'loadModel', files: [], name: 'a' });
    const b = client.request({ type: 'probeGpu' });
    expect(posted.map((m) => [m.id, m.type])).toEqual([[1, 'loadModel'], [2, 'probeGpu']]);
    emit({ type: 'adapter', requestId: 2, adapter: null, error: { code: 'gpu', message: 'none' } });
    emit({ type: 'progress', requestId: 1, stage: 'Reading a' }); // not a result: a stays pending
    emit({ type: 'modelLoaded', requestId: 1, summary, fit: null });
    await expect(b).resolves.toMatchObject({ type: 'adapter', requestId: 2 });
    await expect(a).resolves.toMatchObject({ type: 'modelLoaded', requestId: 1 });
  });

  it('rejects a request answered by an error event with the worker error info', async () => {
    const { port, emit } = fakePort();
    const client = createWorkerClient(port);
    const p = client.request({ type: 'loadModel', files: [], name: 'x' });
    emit({ type: 'error', requestId: 1, error: { code: 'file', message: 'model.safetensors: truncated', subject: 'model.safetensors' } });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerRequestError);
    expect((err as WorkerRequestError).info).toEqual({ code: 'file', message: 'model.safetensors: truncated', subject: 'model.safetensors' });
  });

  it('passes every event to subscribers, ignores foreign messages, and fails open requests when the worker dies', async () => {
    const { port, emit, crash } = fakePort();
    const client = createWorkerClient(port);
    const seen: WorkerEvent[] = [];
    const unsubscribe = client.subscribe((e) => seen.push(e));
    emit({ type: 'adapter', requestId: null, adapter: null });
    emit({ hello: 'not an event' });
    const p = client.request({ type: 'probeGpu' });
    crash('SyntaxError in worker.js');
    await expect(p).rejects.toMatchObject({ info: { code: 'internal' } });
    expect(seen.map((e) => e.type)).toEqual(['adapter', 'error']);
    expect(seen[1]).toMatchObject({ requestId: null, error: { message: expect.stringContaining('SyntaxError in worker.js') } });
    unsubscribe();
    emit({ type: 'adapter', requestId: null, adapter: null });
    expect(seen).toHaveLength(2);
  });
});
