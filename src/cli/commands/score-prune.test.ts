// `gradprune score` / `gradprune prune` on bad input: one clear line each, exit 1 (a problem with a file) or
// 2 (a bad command line), and nothing half-written. None of these cases reaches the GPU.
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelFingerprint } from '../../model/fingerprint';
import { TensorStore } from '../../model/safetensors';
import { openFolder } from '../../model/node-files';
import { normalizeConfig } from '../../model/config';
import { DATASETS, fixtureDir } from '../../testing/paths';
import type { CliIO } from '../command';
import { main } from '../main';
import { demoCommand } from './demo';
import { pruneCommand } from './prune';
import { scoreCommand } from './score';

const COMMANDS = [scoreCommand, pruneCommand, demoCommand];

function memoryIO(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += `${t}\n`), err: (t: string) => void (io.stderr += `${t}\n`) };
  return io;
}

async function cli(...argv: string[]) {
  const io = memoryIO();
  const code = await main(argv, io, COMMANDS);
  return { code, stdout: io.stdout, stderr: io.stderr, firstLine: io.stderr.split('\n')[0] };
}

/** A scores.json for `model` (6 layers unless said), as `gradprune score` writes it. */
async function scoresFile(dir: string, opts: { numLayers: number; fingerprint: string; name?: string }): Promise<string> {
  const L = opts.numLayers;
  const file = path.join(dir, 'scores.json');
  await writeFile(
    file,
    JSON.stringify({
      format: 'gradprune-scores',
      version: 1,
      model: { name: opts.name ?? 'm', architecture: 'LlamaForCausalLM', numLayers: L, fingerprint: opts.fingerprint },
      layerScores: Array.from({ length: L }, (_, l) => L - l),
      layerScoresCode: Array.from({ length: L }, (_, l) => L - l),
      moduleScores: Array.from({ length: L }, () => [1, 1, 1, 1, 1, 1, 1]),
      losses: [1],
      igiaFile: 'scores.igia.safetensors',
    }),
  );
  return file;
}

async function fingerprintOf(name: string): Promise<string> {
  const files = await openFolder(fixtureDir(name));
  const config = normalizeConfig(JSON.parse(await files.get('config.json')!.text()));
  return modelFingerprint({ config, store: await TensorStore.open(files) });
}

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'gradprune-cli-'));
const ARC = path.join(DATASETS, 'arc/arc_easy.jsonl');

describe('gradprune score: bad input', () => {
  it('exits 2 when --data is missing', async () => {
    const r = await cli('score', fixtureDir('tiny-llama'));
    expect(r.code).toBe(2);
    expect(r.firstLine).toBe('gradprune: score needs --data <file>: the dataset to score the layers for.');
  });
  it('exits 2 for an unknown --format, --schedule, or a non-number', async () => {
    const dir = fixtureDir('tiny-llama');
    const format = await cli('score', dir, '--data', ARC, '--format', 'yaml');
    expect(format.code).toBe(2);
    expect(format.firstLine).toBe('gradprune: --format must be one of instruction, prompt-completion, chat, text, multiple-choice, pretokenized (got "yaml").');
    const schedule = await cli('score', dir, '--data', ARC, '--schedule', 'step');
    expect(schedule.code).toBe(2);
    expect(schedule.firstLine).toBe('gradprune: --schedule must be one of constant, linear, cosine (got "step").');
    const steps = await cli('score', dir, '--data', ARC, '--steps', 'many');
    expect(steps.firstLine).toBe('gradprune: --steps must be a whole number (got "many").');
    const warm = await cli('score', dir, '--data', ARC, '--steps', '4', '--warmup-steps', '4', '--schedule', 'cosine');
    expect(warm.code).toBe(2);
    expect(warm.firstLine).toMatch(/^gradprune: 4 warmup steps leave none of the 4 steps for the cosine decay\./);
  });
  it('exits 1 naming the file when the dataset cannot be read', async () => {
    const r = await cli('score', fixtureDir('tiny-llama'), '--data', '/nonexistent/train.jsonl');
    expect(r.code).toBe(1);
    expect(r.firstLine).toMatch(/^gradprune: Cannot read \/nonexistent\/train\.jsonl \(ENOENT\)\. Give the path of the dataset file with --data\.$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
  it('exits 1 when the data has no usable row for the chosen format', async () => {
    const r = await cli('score', fixtureDir('tiny-llama'), '--data', ARC, '--format', 'chat');
    expect(r.code).toBe(1);
    expect(r.firstLine).toMatch(/^gradprune: arc_easy\.jsonl: the chat format needs a column for "messages"/);
  });
  it('exits 1 for a --lora-init folder that is not a PEFT adapter', async () => {
    const r = await cli('score', fixtureDir('tiny-llama'), '--data', ARC, '--lora-init', fixtureDir('tiny-llama'));
    expect(r.code).toBe(1);
    expect(r.firstLine).toMatch(/^gradprune: .*adapter_config\.json/);
  });
});

describe('gradprune prune: bad input', () => {
  it('exits 2 without --scores, --out, or with neither / both of --layers and --ratio', async () => {
    const dir = fixtureDir('tiny-llama');
    expect((await cli('prune', dir, '--layers', '2', '--out', 'x')).firstLine).toBe('gradprune: prune needs --scores <scores.json> (written by `gradprune score`).');
    expect((await cli('prune', dir, '--scores', 's.json', '--layers', '2')).firstLine).toBe('gradprune: prune needs --out <dir>: where to write the pruned checkpoint.');
    for (const args of [[], ['--layers', '2', '--ratio', '0.3']]) {
      const r = await cli('prune', dir, '--scores', 's.json', '--out', 'x', ...args);
      expect(r.code).toBe(2);
      expect(r.firstLine).toBe('gradprune: Give exactly one of --layers N (layers to prune) or --ratio R (fraction of the layers, 0 ≤ R < 1).');
    }
  });
  it('exits 1 when scores.json does not exist', async () => {
    const r = await cli('prune', fixtureDir('tiny-llama'), '--scores', '/nonexistent/scores.json', '--layers', '2', '--out', 'x');
    expect(r.code).toBe(1);
    expect(r.firstLine).toMatch(/^gradprune: Cannot read \/nonexistent\/scores\.json \(ENOENT\)\. Run `gradprune score` first/);
  });
  it('exits 1 for scores of another model: a different layer count, or the same count and another fingerprint', async () => {
    const dir = await tmp();
    const llama = await scoresFile(dir, { numLayers: 6, fingerprint: await fingerprintOf('tiny-llama'), name: 'tiny-llama' });
    const layers = await cli('prune', fixtureDir('tiny-qwen2'), '--scores', llama, '--layers', '2', '--out', path.join(dir, 'out'));
    expect(layers.code).toBe(1);
    expect(layers.firstLine).toBe(`gradprune: ${llama}: it scores a model of 6 layers (tiny-llama), but this model has 5. Score this model first (\`gradprune score\`), or prune the model that was scored.`);
    const other = await scoresFile(await tmp(), { numLayers: 5, fingerprint: await fingerprintOf('tiny-llama'), name: 'tiny-llama' });
    const fp = await cli('prune', fixtureDir('tiny-qwen2'), '--scores', other, '--layers', '2', '--out', path.join(dir, 'out'));
    expect(fp.code).toBe(1);
    expect(fp.firstLine).toMatch(/it was computed on a different model \(tiny-llama; the model fingerprint differs\)/);
    expect(await readdir(dir)).toEqual(['scores.json']); // nothing written
  });
  it('refuses to prune more layers than the model can lose (exit 2)', async () => {
    const dir = await tmp();
    const file = await scoresFile(dir, { numLayers: 6, fingerprint: await fingerprintOf('tiny-llama') });
    const r = await cli('prune', fixtureDir('tiny-llama'), '--scores', file, '--layers', '6', '--out', path.join(dir, 'out'));
    expect(r.code).toBe(2);
    expect(r.firstLine).toBe('gradprune: Cannot prune 6 of 6 layers: layer 0 is always kept, so at most 5 can go. Prune fewer layers.');
  });
  it('exits 1 naming the missing IGIA state when the plan merges layers', async () => {
    const dir = await tmp();
    const file = await scoresFile(dir, { numLayers: 6, fingerprint: await fingerprintOf('tiny-llama') });
    const r = await cli('prune', fixtureDir('tiny-llama'), '--scores', file, '--layers', '3', '--merge', '2', '--out', path.join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.firstLine).toBe(
      `gradprune: The plan merges layers 3, 4, but the IGIA state ${path.join(dir, 'scores.igia.safetensors')} is missing. ` +
        '`gradprune score` writes it beside scores.json: keep the two together, score again, or prune with --merge 0.',
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
