// `gradprune score --checkpoint-every N` / `--resume` through the real CLI: a run in a child process interrupted by
// a real SIGINT after some steps leaves its last snapshot beside --out (and no scores, no temporaries); `--resume`
// continues it to scores.json and scores.igia.safetensors equal to a straight run's (all but the timing), and removes
// the snapshot. A resume at a diverging lr names the module and says how to resume lower; the snapshot survives it.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeRunSnapshot } from '../nn/run-snapshot';
import { openReference } from '../nn/reference/fixture';
import { cli } from '../testing/cli';
import { fixtureDir, REPO_ROOT } from '../testing/paths';

const model = fixtureDir('tiny-llama');
const STEPS = 8;

/** The fixture's recorded scoring rows as a pretokenized JSONL file (the run shuffles and batches them). */
async function fixtureRowsFile(dir: string): Promise<string> {
  const ref = await openReference(model, 'gradprune.safetensors');
  const [S, B, T] = ref.info('input_ids').shape;
  const ids = await ref.readI32('input_ids');
  const mask = await ref.readI32('loss_mask');
  const rows = Array.from({ length: S * B }, (_, r) =>
    JSON.stringify({ input_ids: Array.from(ids.subarray(r * T, (r + 1) * T)), loss_mask: Array.from(mask.subarray(r * T, (r + 1) * T)) }),
  );
  const file = path.join(dir, 'rows.jsonl');
  await writeFile(file, rows.join('\n') + '\n');
  return file;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** `gradprune …` in a child process, sent SIGINT as soon as `file` appears; resolves with its exit code. */
function interruptedWhen(file: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/gradprune.mjs', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // One SIGINT, as one Ctrl-C (a second one arriving while the process exits would kill it by the signal).
  let sent = false;
  const poll = setInterval(() => void exists(file).then((yes) => yes && !sent && (sent = child.kill('SIGINT'))), 50);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ code, stderr });
    }),
  );
}

/** scores.json without what differs between any two runs (the time they took). */
const comparable = async (file: string) => {
  const { elapsedSeconds: _elapsed, ...doc } = JSON.parse(await readFile(file, 'utf8'));
  return doc;
};

describe('gradprune score --resume', () => {
  it('continues a run interrupted by SIGINT to the scores of a straight run', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-resume-'));
    const data = await fixtureRowsFile(tmp);
    const common = [model, '--data', data, '--steps', String(STEPS), '--batch', '2', '--seq', '32', '--lr', '1e-3', '--seed', '3'];
    const straight = path.join(tmp, 'straight', 'scores.json');
    expect((await cli('score', ...common, '--out', straight, '--checkpoint-every', '0')).code).toBe(0);
    expect(await exists(path.join(tmp, 'straight', 'scores.resume.safetensors'))).toBe(false);

    const out = path.join(tmp, 'run', 'scores.json');
    const snapshotFile = path.join(tmp, 'run', 'scores.resume.safetensors');
    const interrupted = await interruptedWhen(snapshotFile, ['score', ...common, '--out', out, '--checkpoint-every', '2']);
    expect(interrupted.code, interrupted.stderr).toBe(130);
    expect((await readdir(path.join(tmp, 'run'))).sort()).toEqual(['scores.resume.safetensors']); // no scores, no temporaries
    const snapshot = await decodeRunSnapshot(new Uint8Array(await readFile(snapshotFile)), snapshotFile);
    expect(snapshot.step).toBeGreaterThanOrEqual(2);
    expect(snapshot.step).toBeLessThan(STEPS);

    // Without --resume the interrupted run's state is not silently replaced.
    const fresh = await cli('score', ...common, '--out', out);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toContain(`${snapshotFile} holds the state of an interrupted run with --out ${out}. Add --resume to continue it, or --overwrite to start afresh`);

    // A resume at a learning rate that diverges names the module and the way back; the snapshot is kept.
    const diverged = await cli('score', ...common, '--lr', '1e38', '--out', out, '--resume', '--checkpoint-every', '100');
    expect(diverged.code).toBe(1);
    expect(diverged.stderr).toMatch(/gradprune: Training diverged at step \d+: .*model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj/);
    expect(diverged.stderr).toContain(`The last checkpoint is from after step ${snapshot.step}: resume from it by running the same command with --resume --lr 1e+37.`);
    expect(await exists(out)).toBe(false);

    const resumed = await cli('score', ...common, '--out', out, '--resume');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming from ${snapshotFile}: ${snapshot.step} steps done`);
    expect(await exists(snapshotFile)).toBe(false);
    expect(await comparable(out)).toEqual(await comparable(straight));
    expect(await readFile(path.join(tmp, 'run', 'scores.igia.safetensors'))).toEqual(await readFile(path.join(tmp, 'straight', 'scores.igia.safetensors')));

    // Nothing to resume now.
    const none = await cli('score', ...common, '--out', path.join(tmp, 'other.json'), '--resume');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`--resume: there is no snapshot ${path.join(tmp, 'other.resume.safetensors')} to continue from.`);
  }, 600_000);

  it('finetune: a run stopped by SIGINT continues with --resume to the adapter of a straight run', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-resume-ft-'));
    const data = await fixtureRowsFile(tmp);
    const common = [model, '--data', data, '--steps', '6', '--batch', '2', '--seq', '32', '--lr', '1e-3', '--held-out', '4', '--seed', '2'];
    const straight = path.join(tmp, 'straight');
    expect((await cli('finetune', ...common, '--out', straight)).code).toBe(0);

    const out = path.join(tmp, 'recovered');
    const snapshotFile = path.join(tmp, 'recovered.resume.safetensors');
    const interrupted = await interruptedWhen(snapshotFile, ['finetune', ...common, '--out', out, '--checkpoint-every', '2']);
    // Ctrl-C either stops after the step in flight and writes what was trained (keeping the state), or exits.
    expect([0, 130], interrupted.stderr).toContain(interrupted.code);
    const snapshot = await decodeRunSnapshot(new Uint8Array(await readFile(snapshotFile)), snapshotFile);
    expect(snapshot.kind).toBe('recovery');
    expect(snapshot.step).toBeLessThan(6);

    const resumed = await cli('finetune', ...common, '--out', out, '--resume', '--overwrite');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await exists(snapshotFile)).toBe(false);
    expect(await readFile(path.join(out, 'adapter_model.safetensors'))).toEqual(await readFile(path.join(straight, 'adapter_model.safetensors')));
    const record = async (dir: string) => {
      const { losses, steps, heldOutLossBefore, heldOutLossAfter } = JSON.parse(await readFile(path.join(dir, 'gradprune_recovery.json'), 'utf8'));
      return { losses, steps, heldOutLossBefore, heldOutLossAfter };
    };
    expect(await record(out)).toEqual(await record(straight));
  }, 600_000);
});
