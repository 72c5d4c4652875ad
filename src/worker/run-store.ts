// The running scoring / recovery run's snapshots in the Origin Private File System, so that a reload, a tab crash
// or a lost device does not lose its steps: one snapshot per (kind, model fingerprint, dataset fingerprint), in
// gradprune-runs/<kind>-<model>-<dataset>.snapshot (nn/run-snapshot.ts's safetensors), with a small .json beside it
// saying what it is (the step, the run's length, the request's settings, whose model and data). Each file is written
// through createWritable, which writes to a swap file and replaces the old one only on close(): a write cut short
// leaves the previous snapshot whole. The snapshot goes when its run completes or the person discards it.
// Without OPFS (Node, old browsers) nothing is stored and nothing is found.

import { GradPruneError } from '../errors';
import { decodeRunSnapshot, encodeRunSnapshot, type RunKind, type RunSnapshot } from '../nn/run-snapshot';
import type { SavedRunInfo } from './protocol';

const FOLDER = 'gradprune-runs';

/** Which run a snapshot continues: its kind, the model trained and the dataset file it trained on (fingerprints). */
export interface RunKey {
  kind: RunKind;
  model: string;
  dataset: string;
}

/** What is kept beside a snapshot: the offer the page shows, and the request settings to continue with. */
export interface StoredRun<Settings = unknown> {
  info: SavedRunInfo;
  settings: Settings;
}

type Root = () => Promise<FileSystemDirectoryHandle | null>;

/** The origin's private file system, or null where there is none. */
export const opfsRoot: Root = async () => {
  try {
    return typeof navigator !== 'undefined' && navigator.storage?.getDirectory ? await navigator.storage.getDirectory() : null;
  } catch {
    return null; // storage blocked (private mode, policy): runs are not kept
  }
};

const nameOf = (key: RunKey) => `${key.kind}-${key.model}-${key.dataset}`.replace(/[^A-Za-z0-9_-]/g, '_');
const isNotFound = (e: unknown) => (e as { name?: string } | null)?.name === 'NotFoundError' || (e as { name?: string } | null)?.name === 'TypeMismatchError';

export class RunStore {
  constructor(private readonly root: Root = opfsRoot) {}

  private async folder(create: boolean): Promise<FileSystemDirectoryHandle | null> {
    const root = await this.root();
    if (!root) return null;
    try {
      return await root.getDirectoryHandle(FOLDER, { create });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Keep `snapshot` (replacing the key's previous one, whole) with what the page is to be told about it. */
  async save<S>(key: RunKey, snapshot: RunSnapshot, stored: StoredRun<S>): Promise<void> {
    const folder = await this.folder(true);
    if (!folder) return;
    const name = nameOf(key);
    await writeWhole(folder, `${name}.snapshot`, encodeRunSnapshot(snapshot));
    await writeWhole(folder, `${name}.json`, new Blob([JSON.stringify(stored)], { type: 'application/json' }));
  }

  /** The key's stored run (what it is, not its arrays), or null. */
  async find<S>(key: RunKey): Promise<StoredRun<S> | null> {
    const folder = await this.folder(false);
    if (!folder) return null;
    const name = nameOf(key);
    try {
      await folder.getFileHandle(`${name}.snapshot`);
      const text = await (await (await folder.getFileHandle(`${name}.json`)).getFile()).text();
      const stored = JSON.parse(text) as StoredRun<S>;
      return stored.info?.kind === key.kind ? stored : null;
    } catch (e) {
      if (isNotFound(e) || e instanceof SyntaxError) return null;
      throw e;
    }
  }

  /** The key's snapshot, read and checked; a GradPruneError('input') when there is none. */
  async load(key: RunKey): Promise<RunSnapshot> {
    const folder = await this.folder(false);
    const name = `${nameOf(key)}.snapshot`;
    try {
      if (folder) return await decodeRunSnapshot(await (await folder.getFileHandle(name)).getFile(), name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    throw new GradPruneError('input', `There is no interrupted ${key.kind} run of this model and dataset to continue.`, { subject: name, hint: 'Start the run afresh.' });
  }

  /** Forget the key's snapshot (its run completed, or the person discarded it). */
  async remove(key: RunKey): Promise<void> {
    const folder = await this.folder(false);
    if (!folder) return;
    const name = nameOf(key);
    for (const file of [`${name}.json`, `${name}.snapshot`]) {
      try {
        await folder.removeEntry(file);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}

/** Write a file so that it is replaced only when complete (createWritable commits its swap file on close). */
async function writeWhole(folder: FileSystemDirectoryHandle, name: string, data: Blob): Promise<void> {
  const handle = await folder.getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  try {
    await data.stream().pipeTo(writable); // closes the writable when the stream ends: the new contents are committed
  } catch (e) {
    await writable.abort().catch(() => {}); // the previous contents stay
    throw e;
  }
}
