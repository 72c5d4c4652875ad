// `gradprune finetune` through the real CLI entry point (in-process), on the fixtures' pruned tiny-llama: the output
// is written first and the before / after table measured only with --measure; a stop (the first Ctrl-C) ends training
// after the step in flight and writes a complete output recording the steps actually run (its snapshot kept beside it
// for --resume); a stop before the first step leaves nothing at --out, not even an empty folder.
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requestStop } from '../outputs';
import { cli, cliWatching } from '../../testing/cli';
import { datasetSlice, prunedTinyLlamaFolder } from '../../testing/recovery-fixtures';

const TABLE_ROW = /^pruned \+ recovered\s+3\s/m;
const outDir = (name: string) => path.join(os.tmpdir(), `gradprune-ft-${name}-${process.pid}-${Date.now()}`);
const common = ['--batch', '4', '--seq', '32', '--held-out', '8', '--lr', '1e-3'];
const siblings = async (out: string) => (await readdir(path.dirname(out))).filter((n) => n.startsWith(path.basename(out)));

describe('gradprune finetune: result first, measurements when asked, stop', () => {
  it('writes the adapter and prints no table without --measure; with --measure the table follows, with progress', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const plain = outDir('plain');
    const r = await cli('finetune', model, '--data', data, '--steps', '2', ...common, '--out', plain);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(plain)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'gradprune_recovery.json']);
    expect(r.stdout).toMatch(/^held-out loss /m);
    expect(r.stdout).not.toMatch(TABLE_ROW);
    expect(r.stderr).toMatch(/before \/ after table not measured \(add --measure/);

    const measured = outDir('measured');
    const m = await cli('finetune', model, '--data', data, '--steps', '2', ...common, '--out', measured, '--measure');
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(TABLE_ROW);
    // Written before measuring: the "wrote" line comes before the first measurement's progress.
    const wrote = m.stderr.indexOf('wrote the PEFT adapter');
    const measuring = m.stderr.indexOf('measure pruned: ');
    expect(wrote).toBeGreaterThanOrEqual(0);
    expect(measuring).toBeGreaterThan(wrote);
  });

  it('a stop after the first step writes a complete output that records 1 step of the 6 planned', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const out = outDir('stopped');
    const r = await cliWatching((line) => void (line.includes('step 1/6') && requestStop()), 'finetune', model, '--data', data, '--steps', '6', ...common, '--merge-adapter', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopping after the step in flight/);
    expect(r.stderr).toMatch(/\(1 steps, stopped early: 6 were planned/);
    expect(await readdir(out)).toContain('model.safetensors');
    const record = JSON.parse(await readFile(path.join(out, 'gradprune_recovery.json'), 'utf8'));
    expect(record).toMatchObject({ steps: 1, stopped: true, settings: { steps: 6 } });
    expect(record.losses).toHaveLength(1);
    // Beside it only the run's snapshot, kept so that `--resume` continues the stopped run; no temporary.
    expect((await siblings(out)).sort()).toEqual([path.basename(out), `${path.basename(out)}.resume.safetensors`]);
  });

  it('a stop before the first step writes nothing: no folder, no temporary beside it', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const out = path.join(outDir('nothing'), 'nested', 'adapter');
    // The held-out evaluation before training reports first: stop there.
    const r = await cliWatching((line) => void (line.startsWith('eval  before') && requestStop()), 'finetune', model, '--data', data, '--steps', '6', ...common, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gradprune: Fine-tuning was stopped before its first step; nothing was written to /);
    await expect(readdir(path.dirname(path.dirname(out)))).rejects.toThrow(/ENOENT/);
  });
});
