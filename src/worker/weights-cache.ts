// The worker's weights on the GPU: each checkpoint's weights uploaded once per device and storage, and shared by
// every job after (Check's evaluation and generation, Recover's training and its before / after table). A job
// asks for weights with its memory plan; the cache hands back an upload that fits beside the job within the budget,
// evicting the least recently used other uploads until it does, and uploads (resident, or streamed layer by layer
// when that is what fits) when it holds none. A new device, model, dataset or prune drops what it makes stale.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { checkJobMemory, defaultGpuBudget, planResidency, type MemoryPlan } from '../nn/memory';
import type { WeightStorage } from '../nn/precision';
import { ModelWeights } from '../nn/weights';

/** What is uploaded: a checkpoint (identity is the key, with the storage). */
export interface WeightsCheckpoint {
  name: string;
  config: ModelConfig;
  store: TensorStore;
}

interface Entry {
  ckpt: WeightsCheckpoint;
  storage: WeightStorage;
  weights: ModelWeights;
  lastUsed: number;
  /** Jobs running on it now: never evicted while > 0. */
  pins: number;
}

/** Weights handed to a job; release() when the job is destroyed (the weights stay cached). */
export interface WeightsLease {
  weights: ModelWeights;
  /** GPU bytes the job may use beside every cached upload (its budget once the others are counted). */
  available: number;
  release(): void;
}

export interface AcquireOptions {
  /** The whole GPU budget in bytes (null: what the adapter allows). */
  maxGpuMemory?: number | null;
  onProgress?: (done: number, total: number) => void;
}

const isMemory = (e: unknown) => e instanceof GradPruneError && e.code === 'memory';

export class WeightsCache {
  /** Every upload made (ModelWeights.load), for tests and the page's progress. */
  uploads = 0;
  private entries: Entry[] = [];
  private gpu: Gpu | null = null;
  private clock = 0;

  /** The cached uploads, most recently used last. */
  list(): { name: string; storage: WeightStorage; residency: string; bytes: number }[] {
    return [...this.entries].sort((a, b) => a.lastUsed - b.lastUsed).map((e) => ({ name: e.ckpt.name, storage: e.storage, residency: e.weights.residency, bytes: e.weights.allocatedBytes }));
  }

  /** GPU bytes of every cached upload. */
  get bytes(): number {
    return this.entries.reduce((s, e) => s + e.weights.allocatedBytes, 0);
  }

  /**
   * Weights of `ckpt` in `storage` for a job with this memory plan: the cached upload when the job fits beside it
   * (least recently used other uploads evicted as needed), else a new upload (resident when that fits, else streamed).
   * Throws GradPruneError('memory') when the job does not fit even alone.
   */
  async acquire(gpu: Gpu, ckpt: WeightsCheckpoint, storage: WeightStorage, job: MemoryPlan, opts: AcquireOptions = {}): Promise<WeightsLease> {
    if (this.gpu !== gpu) {
      this.clear(); // a new device (the old one was lost): its buffers are gone with it
      this.gpu = gpu;
    }
    const budget = opts.maxGpuMemory ?? defaultGpuBudget(gpu.adapter);
    const others = (except: Entry | null) => this.entries.reduce((s, e) => (e === except ? s : s + e.weights.allocatedBytes), 0);
    const hit = this.entries.find((e) => e.ckpt === ckpt && e.storage === storage);
    if (hit) {
      for (;;) {
        try {
          checkJobMemory(hit.weights, job, budget - others(hit));
          return this.lease(hit, budget - others(hit));
        } catch (e) {
          if (!isMemory(e)) throw e;
          if (!this.evictOne(hit)) break;
        }
      }
      // The job does not fit beside this upload even alone (e.g. resident weights and a larger job): upload again,
      // streamed if that is what fits.
      if (hit.pins === 0) this.drop(hit);
    }
    // Resident when it fits, evicting the least recently used uploads as needed (a resident job runs without
    // per-step uploads); streamed only when even the whole budget cannot hold the weights resident beside the job.
    let residency: 'resident' | 'streamed' = 'resident';
    for (;;) {
      try {
        residency = planResidency(ckpt.config, job, gpu.adapter, residency === 'resident' ? 'resident' : 'auto', budget - others(null)).residency;
        break;
      } catch (e) {
        if (!isMemory(e)) throw e;
        if (this.evictOne(null)) continue;
        if (residency === 'streamed') throw e;
        residency = 'streamed'; // nothing left to evict: 'auto' now (resident again, then streamed, then the refusal)
      }
    }
    const weights = await ModelWeights.load(gpu, ckpt.config, ckpt.store, { storage, residency, onProgress: opts.onProgress });
    this.uploads++;
    const entry: Entry = { ckpt, storage, weights, lastUsed: 0, pins: 0 };
    this.entries.push(entry);
    return this.lease(entry, budget - others(entry));
  }

  /** Drop (and free) every upload whose checkpoint `stale` says is stale; running jobs keep theirs until released. */
  evict(stale: (ckpt: WeightsCheckpoint) => boolean): void {
    for (const e of [...this.entries]) if (stale(e.ckpt)) this.drop(e);
  }

  clear(): void {
    this.evict(() => true);
  }

  private lease(entry: Entry, available: number): WeightsLease {
    entry.lastUsed = ++this.clock;
    entry.pins++;
    let released = false;
    return {
      weights: entry.weights,
      available,
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
        if (entry.pins === 0 && !this.entries.includes(entry)) entry.weights.destroy(); // dropped while in use
      },
    };
  }

  /** Evict the least recently used upload other than `keep` that no job is running on; false when there is none. */
  private evictOne(keep: Entry | null): boolean {
    const victim = this.entries.filter((e) => e !== keep && e.pins === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (!victim) return false;
    this.drop(victim);
    return true;
  }

  private drop(entry: Entry): void {
    this.entries = this.entries.filter((e) => e !== entry);
    if (entry.pins === 0) entry.weights.destroy();
  }
}
