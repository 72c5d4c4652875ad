// The per-step LoRA gradient factors GradPruner needs to rebuild F for the merged layers, kept in host memory.
//
// Each step, `stage(encoder, step)` copies the step's clipped gA (r, in) and gB (out, r) of every stored module
// into one slot of a small ring of GPU staging buffers (MAP_READ | COPY_DST), inside the trainer's encoder. Once
// that encoder is submitted the slot is mapped asynchronously and its values appended to one host Float32Array
// per module, (maxSteps, r·(in + out)): per step gA then gB, the layout of scores.igia.safetensors. So the GPU
// holds a few steps of factors whatever the number of steps; host memory holds them all, in f32 (the fixtures'
// 1e-3 tolerance on F is for f32 factors, and a reloaded state must rebuild the very same F).
//
// Contract with the caller: submit the encoder `stage` recorded into before awaiting anything — the slot is
// mapped from a microtask, which runs only after the caller's synchronous submit (Trainer.trainStep submits
// right after its afterClip hook). Await `ready()` before recording the next step to stay within `stagingSlots`;
// a caller that records faster than the factors reach the host gets extra slots, up to `maxStagingBytes`.

import { GradPruneError } from '../errors';
import { createReadbackBuffer, MAP_READ, type Tensor } from '../gpu/tensor';
import { linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { formatBytes } from '../format';

const MiB = 2 ** 20;

export interface FactorStoreOptions {
  rank: number;
  maxSteps: number;
  /** Staging slots (one step of factors each) the scoring loop keeps to by awaiting ready() (default 2). */
  stagingSlots?: number;
  /** The most GPU memory extra slots may take when steps are recorded without awaiting ready() (default 256 MiB). */
  maxStagingBytes?: number;
  /** Refuse to keep more than this in host memory (default 4 GiB). */
  maxHostBytes?: number;
}

/** Where one LoRA gradient lives: a buffer (or tensor) and the element offset of its first value. */
export interface GradView {
  buffer: GPUBuffer | Tensor;
  /** f32 elements from the start of the buffer. */
  offset?: number;
}

/** One module's clipped LoRA gradients, as the scorer (./igia.ts) and the store read them each step. */
export interface IgiaModuleGrads {
  layer: number;
  module: LinearModule;
  /** dLoss/dA, (r, in), after clipping. */
  gA: GradView;
  /** dLoss/dB, (out, r), after clipping. */
  gB: GradView;
}

export const DEFAULT_STAGING_SLOTS = 2;
export const DEFAULT_MAX_STAGING_BYTES = 256 * MiB;
export const DEFAULT_MAX_HOST_FACTOR_BYTES = 4 * 2 ** 30;

/** f32 elements of one module's factors per step: r·(in + out). */
export const factorRowLength = (c: ModelConfig, m: LinearModule, rank: number): number => {
  const [out, inp] = linearShape(c, m);
  return rank * (inp + out);
};

interface StagedModule {
  /** Index in the store's module list (and its host array). */
  index: number;
  layer: number;
  module: LinearModule;
  gA: GradView;
  gB: GradView;
  /** f32 elements of gA, (r, in). */
  aLength: number;
  /** r·(in + out). */
  row: number;
  /** First f32 element of this module inside its staging part. */
  offset: number;
}

/** One staging buffer's worth of modules (a step is split over several when it exceeds maxBufferSize). */
interface StagingPart {
  bytes: number;
  modules: StagedModule[];
}

interface RingSlot {
  buffers: GPUBuffer[]; // one per staging part, (part floats)
  /** The step whose factors it holds; -1 when free. */
  step: number;
  /** Map and copy to host, once started. */
  reading: Promise<void> | null;
}

export const bufferOf = (b: GradView['buffer']): GPUBuffer => ('buffer' in b ? b.buffer : b);
const mib = (bytes: number) => (bytes / MiB).toFixed(0);

export class FactorStore {
  readonly rank: number;
  readonly maxSteps: number;
  /** Bytes of one step's factors (one staging slot). */
  readonly stepBytes: number;
  private readonly parts: StagingPart[] = [];
  private readonly modules: StagedModule[] = [];
  private readonly host: Float32Array[] = []; // per module, (maxSteps, row), allocated at its first step
  private readonly ring: RingSlot[] = [];
  private readonly stagingSlots: number;
  private readonly maxSlots: number;
  private staged = 0;
  private failure: { step: number; error: unknown } | null = null;
  private destroyed = false;

  constructor(private readonly device: GPUDevice, config: ModelConfig, grads: IgiaModuleGrads[], opts: FactorStoreOptions) {
    this.rank = opts.rank;
    this.maxSteps = opts.maxSteps;
    const partLimit = device.limits.maxBufferSize;
    let part: StagingPart | null = null;
    for (const g of grads) {
      const [, inp] = linearShape(config, g.module);
      const row = factorRowLength(config, g.module, opts.rank);
      if (!part || (part.bytes + row * 4 > partLimit && part.modules.length > 0)) this.parts.push((part = { bytes: 0, modules: [] }));
      const m: StagedModule = { index: this.modules.length, layer: g.layer, module: g.module, gA: g.gA, gB: g.gB, aLength: opts.rank * inp, row, offset: part.bytes / 4 };
      part.modules.push(m);
      this.modules.push(m);
      part.bytes += row * 4;
    }
    this.stepBytes = this.parts.reduce((s, p) => s + p.bytes, 0);
    const hostLimit = opts.maxHostBytes ?? DEFAULT_MAX_HOST_FACTOR_BYTES;
    if (this.stepBytes * this.maxSteps > hostLimit) {
      throw new GradPruneError(
        'memory',
        `Keeping the gradient factors of ${this.maxSteps} steps needs ${mib(this.stepBytes * this.maxSteps)} MiB of host memory, over the ${mib(hostLimit)} MiB allowed.`,
        { subject: 'steps', hint: `Score with at most ${Math.max(1, Math.floor(hostLimit / this.stepBytes))} steps, or a lower LoRA rank.` },
      );
    }
    this.stagingSlots = Math.max(1, opts.stagingSlots ?? DEFAULT_STAGING_SLOTS);
    this.maxSlots = Math.max(this.stagingSlots, Math.floor((opts.maxStagingBytes ?? DEFAULT_MAX_STAGING_BYTES) / Math.max(1, this.stepBytes)));
  }

  /** Layer and module of every stored factor set. */
  get stored(): { layer: number; module: LinearModule }[] {
    return this.modules.map(({ layer, module }) => ({ layer, module }));
  }

  /** Steps staged so far (their values are on the host once `pending` is 0). */
  get steps(): number {
    return this.staged;
  }

  /** Staged steps whose values have not reached the host yet. */
  get pending(): number {
    return this.ring.filter((r) => r.step >= 0).length;
  }

  /** GPU bytes of the staging buffers now allocated. */
  get gpuBytes(): number {
    return this.ring.length * this.stepBytes;
  }

  /** Host bytes of the factor arrays now allocated (maxSteps rows per module). */
  get hostBytes(): number {
    return this.host.reduce((s, a) => s + (a ? a.byteLength : 0), 0);
  }

  /** Record the copy of this step's factors into a free staging slot; submit `encoder` before awaiting anything. */
  stage(encoder: GPUCommandEncoder, step: number): void {
    if (this.parts.length === 0) return;
    let slot = this.ring.find((r) => r.step < 0);
    if (!slot) {
      if (this.ring.length >= this.maxSlots) {
        throw new GradPruneError(
          'memory',
          `Every IGIA staging slot (${this.ring.length} of ${formatBytes(this.stepBytes)}) still waits to be read back, so the gradient factors of step ${step + 1} have nowhere to go.`,
          { subject: 'steps', hint: 'Await the scorer’s ready() before recording each step (the scoring pipeline does), or allow more staging memory.' },
        );
      }
      slot = { buffers: this.parts.map((p, i) => createReadbackBuffer(this.device, `igia.staging.${this.ring.length}.${i}`, p.bytes)), step: -1, reading: null };
      this.ring.push(slot);
    }
    this.parts.forEach((part, i) => {
      const target = slot.buffers[i];
      for (const m of part.modules) {
        encoder.copyBufferToBuffer(bufferOf(m.gA.buffer), (m.gA.offset ?? 0) * 4, target, m.offset * 4, m.aLength * 4);
        encoder.copyBufferToBuffer(bufferOf(m.gB.buffer), (m.gB.offset ?? 0) * 4, target, (m.offset + m.aLength) * 4, (m.row - m.aLength) * 4);
      }
    });
    this.modules.forEach((m, i) => (this.host[i] ??= new Float32Array(this.maxSteps * m.row)));
    slot.step = step;
    this.staged = Math.max(this.staged, step + 1);
    const staged = slot;
    queueMicrotask(() => this.read(staged));
  }

  /** Resolves once fewer than `stagingSlots` steps are waiting to reach the host (so the next step has a slot). */
  async ready(): Promise<void> {
    for (;;) {
      const waiting = this.ring.filter((r) => r.step >= 0);
      if (waiting.length < this.stagingSlots) break;
      await Promise.race(waiting.map((r) => this.read(r)));
    }
    this.throwIfFailed();
  }

  /** Resolves once every staged step's factors are in host memory. */
  async flush(): Promise<void> {
    await Promise.all(this.ring.filter((r) => r.step >= 0).map((r) => this.read(r)));
    this.throwIfFailed();
  }

  /**
   * The factors of the staged steps, keyed by weight name (`model.layers.L.self_attn.q_proj.weight`), each
   * (steps, r·(in + out)): views of the host store, not copies. Every staged step must have reached the host.
   */
  values(): Map<string, Float32Array> {
    this.throwIfFailed();
    const pending = this.pending;
    if (pending > 0) {
      // A caller's bug, not a person's input: readScores() flushes first.
      throw new Error(`The gradient factors of ${pending} recorded step${pending > 1 ? 's are' : ' is'} still on the way to host memory: await the scorer's flush() before using them.`);
    }
    const out = new Map<string, Float32Array>();
    this.modules.forEach((m, i) => out.set(linearWeightName(m.layer, m.module), (this.host[i] ?? new Float32Array(0)).subarray(0, this.staged * m.row)));
    return out;
  }

  /**
   * Continue from a snapshot: the factors of its first `steps` steps, keyed as values() gives them. Before any step
   * is staged. A module missing or of another length is refused (GradPruneError('input') naming it).
   */
  restore(factors: ReadonlyMap<string, Float32Array>, steps: number): void {
    if (this.staged > 0 || this.ring.length > 0) throw new Error('FactorStore.restore after steps were staged.');
    if (steps > this.maxSteps) throw new GradPruneError('input', `The snapshot holds the gradient factors of ${steps} steps, more than the ${this.maxSteps} this run keeps.`, { subject: 'steps' });
    this.modules.forEach((m, i) => {
      const name = linearWeightName(m.layer, m.module);
      const values = factors.get(name);
      if (!values || values.length !== steps * m.row) {
        throw new GradPruneError('input', `The snapshot's gradient factors of ${name} are ${values ? `${values.length} values` : 'missing'}; ${steps} steps of rank ${this.rank} need ${steps * m.row}.`, {
          subject: name,
          hint: 'The snapshot does not belong to this run: start afresh.',
        });
      }
      this.host[i] = new Float32Array(this.maxSteps * m.row);
      this.host[i].set(values);
    });
    this.staged = steps;
  }

  destroy(): void {
    this.destroyed = true;
    for (const slot of this.ring) for (const b of slot.buffers) b.destroy();
    this.ring.length = 0;
  }

  private throwIfFailed(): void {
    if (!this.failure) return;
    const { step, error } = this.failure;
    throw new GradPruneError('gpu', `Reading the gradient factors of step ${step + 1} back from the GPU failed: ${error instanceof Error ? error.message : String(error)}.`, {
      subject: 'steps',
      hint: 'The GPU device was probably lost; score again.',
      cause: error,
    });
  }

  /** Map a staged slot (once), append its values to the host store and free the slot. */
  private read(slot: RingSlot): Promise<void> {
    if (slot.reading) return slot.reading;
    if (slot.step < 0 || this.destroyed) return Promise.resolve();
    const step = slot.step;
    slot.reading = Promise.allSettled(slot.buffers.map((b) => b.mapAsync(MAP_READ)))
      .then((maps) => {
        const failed = maps.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        this.parts.forEach((part, i) => {
          const mapped = new Float32Array(slot.buffers[i].getMappedRange());
          for (const m of part.modules) this.host[m.index].set(mapped.subarray(m.offset, m.offset + m.row), step * m.row);
        });
      })
      .catch((error: unknown) => {
        if (!this.destroyed) this.failure ??= { step, error };
      })
      .finally(() => {
        if (this.destroyed) return;
        for (const b of slot.buffers) if (b.mapState === 'mapped') b.unmap();
        slot.step = -1;
        slot.reading = null;
        // Extra slots from a burst of unawaited steps go back once read.
        if (this.ring.length > this.stagingSlots) {
          this.ring.splice(this.ring.indexOf(slot), 1);
          for (const b of slot.buffers) b.destroy();
        }
      });
    return slot.reading;
  }
}
