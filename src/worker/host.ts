// The worker's brain, apart from the Worker global so that Node tests can drive it: it owns the GPU device and
// all engine state, and reports a lost device without dying (the next request that needs the GPU asks for a new
// device). Each request goes to one handler that returns its result (./steps/*.ts for the session's steps); the
// host posts that result, or the error it threw — so every request gets exactly one answer.

import { GradPruneError, toErrorInfo, type ErrorInfo } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { modelFingerprint } from '../model/fingerprint';
import { openCheckpoint } from '../model/checkpoint';
import { checkFit, summarizeModel } from '../model/summary';
import { RESULT_EVENT_TYPE, type RequestMessage, type RequestOf, type RequestType, type ResultBody, type WorkerEvent } from './protocol';
import { Session, type StepContext } from './session';
import { evaluate, generate } from './steps/check';
import { loadDataset, setFormat } from './steps/dataset';
import { exportFiles, exportZip } from './steps/export';
import { exportGguf, ggufSizes } from './steps/export-gguf';
import { applyPrune } from './steps/prune';
import { evaluatePlans } from './steps/compare-plans';
import { tryOnnx } from './steps/try-onnx';
import { recover } from './steps/recover';
import { discardSavedRun, findSavedRun } from './steps/saved-run';
import { probeRun } from './steps/probe';
import { estimateMemory, score } from './steps/score';
import { RunStore } from './run-store';
import { WeightsCache } from './weights-cache';

export interface HostDeps {
  requestGpu: () => Promise<Gpu>;
  /** Where training runs keep their snapshots (default: the origin's private file system, where there is one). */
  runs?: RunStore;
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

/** A request's handler: its result, or a throw (the host answers with the error). */
type Handler<K extends RequestType> = (req: RequestOf<K>, id: number) => Promise<ResultBody<K>> | ResultBody<K>;

export function createWorkerHost(post: (event: WorkerEvent) => void, deps: HostDeps = { requestGpu }): WorkerHost {
  let probe: Promise<GpuProbe> | null = null;
  let session: Session | null = null;
  /** Every upload to the GPU, shared by the loaded model's jobs; cleared when another model is loaded. */
  const weights = new WeightsCache();
  const runs = deps.runs ?? new RunStore();

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

  const adapterOf = (p: GpuProbe): ResultBody<'probeGpu'> => (p.gpu ? { adapter: p.gpu.adapter } : { adapter: null, error: p.error });

  /** A session step: its handler gets the loaded model's session and a context for this request. */
  const step =
    <K extends RequestType>(run: (ctx: StepContext, req: RequestOf<K>) => Promise<ResultBody<K>> | ResultBody<K>): Handler<K> =>
    (req, id) => {
      if (!session) throw new GradPruneError('input', 'No model is loaded.', { subject: 'model', hint: 'Load a model in step 1 (or try the demo) first.' });
      const ctx: StepContext = { id, session, gpu: needGpu, post, runs, progress: (stage, fraction) => post({ type: 'progress', requestId: id, stage, fraction }) };
      return run(ctx, req);
    };

  /** Pause / resume / stop of the running score or recovery (idle when there is none, or no model). */
  const control: Handler<'pause' | 'resume' | 'stop'> = (req) => ({ state: session?.control(req.type) ?? 'idle', holdsAfter: session?.holdsAfter ?? null });

  const handlers: { [K in RequestType]: Handler<K> } = {
    probeGpu: async () => {
      const current = probe ? await probe : null;
      return adapterOf(await ensureGpu(!current?.gpu));
    },
    loadModel: async (req, id) => {
      // The new checkpoint is opened and checked in full before it replaces anything: a failed load (a truncated
      // file, a missing shard, a bad config) leaves the loaded model, its dataset, scores and pruned result as they were.
      const files = new Map(req.files.map((f) => [f.name, f.blob]));
      post({ type: 'progress', requestId: id, stage: `Reading ${req.name}` });
      const ckpt = await openCheckpoint(files, req.name);
      const summary = summarizeModel(ckpt);
      const fingerprint = await modelFingerprint(ckpt);
      const { gpu } = await ensureGpu();
      weights.clear();
      session = new Session(ckpt, weights, fingerprint);
      return { summary, config: ckpt.config, fit: gpu ? checkFit(summary, gpu.adapter) : null, fingerprint };
    },
    unloadModel: () => {
      session = null;
      weights.clear();
      return {};
    },
    loadDataset: step(loadDataset),
    setFormat: step(setFormat),
    estimateMemory: step(async (ctx, req) => estimateMemory(ctx, req, (probe ? await probe : null)?.gpu?.adapter ?? null)),
    probeRun: step(probeRun),
    score: step(score),
    findSavedRun: step(findSavedRun),
    discardSavedRun: step(discardSavedRun),
    pause: control,
    resume: control,
    stop: control,
    applyPrune: step(applyPrune),
    evaluate: step(evaluate),
    evaluatePlans: step(evaluatePlans),
    generate: step(generate),
    recover: step(recover),
    exportZip: step(exportZip),
    ggufSizes: step(ggufSizes),
    exportGguf: step(exportGguf),
    tryOnnx: step(tryOnnx),
    exportFiles: step(exportFiles),
  };

  async function answer<K extends RequestType>(msg: RequestOf<K> & { id: number }): Promise<void> {
    const handler = Object.hasOwn(handlers, msg.type) ? (handlers[msg.type] as Handler<K>) : null;
    if (!handler) {
      throw new GradPruneError('input', `The worker got a request it does not know: ${JSON.stringify(msg.type)}.`, {
        hint: 'The page and the worker are from different versions: reload the page.',
      });
    }
    const body = await handler(msg, msg.id);
    post({ ...body, type: RESULT_EVENT_TYPE[msg.type], requestId: msg.id } as WorkerEvent);
  }

  return {
    async start() {
      post({ type: 'adapter', requestId: null, ...adapterOf(await ensureGpu()) });
    },
    async handle(message: unknown) {
      const msg = message as Partial<RequestMessage> | null;
      const id = typeof msg?.id === 'number' ? msg.id : null;
      if (id === null || typeof msg?.type !== 'string') {
        post({ type: 'error', requestId: id, error: toErrorInfo(new GradPruneError('input', 'The worker got a malformed request (no id or type).')) });
        return;
      }
      try {
        await answer(msg as RequestMessage);
      } catch (err) {
        post({ type: 'error', requestId: id, error: toErrorInfo(err) });
      }
    },
    reportStray(err: unknown) {
      post({ type: 'error', requestId: null, error: toErrorInfo(err) });
    },
    loadedModel: () => session?.checkpoint.name ?? null,
    weights,
  };
}
