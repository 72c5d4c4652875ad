// The worker's brain, apart from the Worker global so that Node tests can drive it: it owns the GPU device and
// all engine state, answers each request with exactly one result or error event, and reports a lost device
// without dying (the next request that needs the GPU asks for a new device).

import { GradPruneError, toErrorInfo, type ErrorInfo } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { openCheckpoint } from '../model/checkpoint';
import { checkFit, summarizeModel } from '../model/summary';
import { Journey } from './journey';
import { WeightsCache } from './weights-cache';
import type { RequestMessage, WorkerEvent } from './protocol';

export interface HostDeps {
  requestGpu: () => Promise<Gpu>;
}

export interface WorkerHost {
  /** Probe the GPU and announce the adapter (requestId null). */
  start(): Promise<void>;
  /** Handle one message from the page; never throws, never rejects. */
  handle(message: unknown): Promise<void>;
  /** Report a failure that escaped every request (the worker's global error handlers call this). */
  reportStray(err: unknown): void;
  /** The name of the loaded model, or null (for tests; the page learns it from events). */
  loadedModel(): string | null;
  /** The weights on the GPU (for tests: uploads made, what is cached). */
  readonly weights: WeightsCache;
}

type GpuProbe = { gpu: Gpu; error?: undefined } | { gpu: null; error: ErrorInfo };

export function createWorkerHost(post: (event: WorkerEvent) => void, deps: HostDeps = { requestGpu }): WorkerHost {
  let probe: Promise<GpuProbe> | null = null;
  let checkpoint: { name: string; journey: Journey } | null = null;
  /** Every upload to the GPU, shared by the loaded model's jobs; cleared when another model is loaded. */
  const weights = new WeightsCache();

  /** The current device, or why there is none; a failed probe is remembered until probeGpu asks again. */
  const ensureGpu = (retry = false): Promise<GpuProbe> => {
    if (probe && !retry) return probe;
    const attempt: Promise<GpuProbe> = deps.requestGpu().then(
      (gpu) => {
        void gpu.lost.then((err) => {
          if (probe === attempt) probe = null; // the next request that needs the GPU asks for a fresh device
          post({ type: 'deviceLost', requestId: null, error: toErrorInfo(err) });
        });
        return { gpu };
      },
      (err: unknown) => ({ gpu: null, error: toErrorInfo(err) }),
    );
    probe = attempt;
    return attempt;
  };

  /** The device for a GPU step, or the reason there is none as a thrown GradPruneError. */
  const needGpu = async (): Promise<Gpu> => {
    const p = await ensureGpu();
    if (p.gpu) return p.gpu;
    throw new GradPruneError('gpu', p.error.message, { subject: p.error.subject });
  };

  const journey = (): Journey => {
    if (!checkpoint) {
      throw new GradPruneError('input', 'No model is loaded.', { subject: 'model', hint: 'Load a model in step 1 (or try the demo) first.' });
    }
    return checkpoint.journey;
  };

  const adapterEvent = (requestId: number | null, p: GpuProbe): WorkerEvent =>
    p.gpu ? { type: 'adapter', requestId, adapter: p.gpu.adapter } : { type: 'adapter', requestId, adapter: null, error: p.error };

  async function run(msg: RequestMessage): Promise<void> {
    switch (msg.type) {
      case 'probeGpu': {
        const current = probe ? await probe : null;
        post(adapterEvent(msg.id, await ensureGpu(!current?.gpu)));
        return;
      }
      case 'loadModel': {
        checkpoint = null; // a failed load must not leave the previous model looking current
        weights.clear();
        const files = new Map<string, Blob>();
        for (const f of msg.files) files.set(f.name, f.blob);
        post({ type: 'progress', requestId: msg.id, stage: `Reading ${msg.name}` });
        const ckpt = await openCheckpoint(files, msg.name);
        const summary = summarizeModel(ckpt);
        const { gpu } = await ensureGpu();
        const fit = gpu ? checkFit(summary, gpu.adapter) : null;
        checkpoint = { name: msg.name, journey: new Journey(ckpt, needGpu, post, weights) };
        post({ type: 'modelLoaded', requestId: msg.id, summary, config: ckpt.config, fit });
        return;
      }
      case 'unloadModel':
        checkpoint = null;
        weights.clear();
        post({ type: 'modelUnloaded', requestId: msg.id });
        return;
      case 'loadDataset':
        return journey().loadDataset(msg.id, msg.file, msg.fileName, msg.options);
      case 'setFormat':
        return journey().setFormat(msg.id, msg.options);
      case 'score':
        return journey().score(msg.id, msg.settings);
      case 'estimateMemory': {
        const p = probe ? await probe : null;
        return journey().estimateMemory(msg.id, msg.settings, p?.gpu?.adapter ?? null);
      }
      case 'pause':
      case 'resume':
      case 'stop':
        if (!checkpoint) post({ type: 'scoreControl', requestId: msg.id, state: 'idle' });
        else checkpoint.journey.control(msg.id, msg.type);
        return;
      case 'applyPrune':
        return journey().applyPrune(msg.id, msg.plan);
      case 'evaluate':
        return journey().evaluate(msg.id, msg.options);
      case 'generate':
        return journey().generate(msg.id, msg.prompts, msg.maxNewTokens, msg);
      case 'recover':
        return journey().recover(msg.id, msg.settings, msg.evaluation);
      case 'exportZip':
        return journey().exportZip(msg.id, msg.adapter, msg.target);
      default: {
        const unknown = msg as { type?: unknown; id: number };
        throw new GradPruneError('input', `The worker got a request it does not know: ${JSON.stringify(unknown.type)}.`, {
          hint: 'The page and the worker are from different versions: reload the page.',
        });
      }
    }
  }

  return {
    async start() {
      post(adapterEvent(null, await ensureGpu()));
    },
    async handle(message: unknown) {
      const msg = message as Partial<RequestMessage> | null;
      const id = typeof msg?.id === 'number' ? msg.id : null;
      if (id === null || typeof msg?.type !== 'string') {
        post({ type: 'error', requestId: id, error: toErrorInfo(new GradPruneError('input', 'The worker got a malformed request (no id or type).')) });
        return;
      }
      try {
        await run(msg as RequestMessage);
      } catch (err) {
        post({ type: 'error', requestId: id, error: toErrorInfo(err) });
      }
    },
    reportStray(err: unknown) {
      post({ type: 'error', requestId: null, error: toErrorInfo(err) });
    },
    loadedModel: () => checkpoint?.name ?? null,
    weights,
  };
}
