import { execFile } from 'node:child_process';
import { copyFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { REPO_ROOT, fixtureDir } from '../testing/paths';
import { intOption, type CliIO, type Command } from './command';
import { main } from './main';

const run = promisify(execFile);

/** Runs `node bin/gradprune.mjs …` from the repository root; never rejects on a non-zero exit. */
async function gradprune(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/gradprune.mjs', ...args], { cwd: REPO_ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('gradprune inspect (child process)', () => {
  it('prints the tiny-qwen2 summary as JSON', async () => {
    const { code, stdout, stderr } = await gradprune('inspect', path.relative(REPO_ROOT, fixtureDir('tiny-qwen2')), '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    const s = JSON.parse(stdout);
    // The fixtures README: Qwen2ForCausalLM, BF16, 5 layers, hidden 96, heads 6 / kv 2, head_dim 16, intermediate 256, vocab 512, tied.
    expect(s).toMatchObject({
      architecture: 'Qwen2ForCausalLM',
      numLayers: 5,
      hiddenSize: 96,
      numHeads: 6,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 256,
      vocabSize: 512,
      dtype: 'BF16',
      tiedEmbeddings: true,
    });
    const perLayer = 2 * 96 + (96 * 96 + 96) + 2 * (32 * 96 + 32) + 96 * 96 + 3 * 256 * 96;
    expect(s.params.perLayer).toBe(perLayer);
    expect(s.params.total).toBe(512 * 96 + 5 * perLayer + 96);
    // With a WebGPU adapter the fit is reported; without one the reason is.
    if (s.adapter) {
      expect(s.fit.fits).toBe(true);
      expect(s.adapter.maxBufferSize).toBeGreaterThan(0);
    } else {
      expect(s.adapterUnavailableReason).toEqual(expect.any(String));
      expect(s.fit).toBeNull();
    }
  });
  it('prints the text summary without a GPU', async () => {
    const { code, stdout } = await gradprune('inspect', fixtureDir('tiny-mistral'), '--no-gpu');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^tiny-mistral: MistralForCausalLM \(mistral\), F16 weights/);
    expect(stdout).toMatch(/heads\s+5 query \/ 1 key-value, head_dim 16/);
    expect(stdout).toMatch(/WebGPU adapter\n\s+none: not requested \(--no-gpu\)/);
  });
  it('fails with one line naming config.json for a folder without it (exit 1)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gradprune-noconfig-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) await copyFile(path.join(fixtureDir('tiny-llama'), f), path.join(dir, f));
    const { code, stdout, stderr } = await gradprune('inspect', dir, '--no-gpu');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^gradprune: The model folder has no config\.json\./);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
  it('exits 2 with the usage line when the model folder is not given', async () => {
    const { code, stderr } = await gradprune('inspect');
    expect(code).toBe(2);
    expect(stderr).toMatch(/gradprune: inspect needs <model-dir>\./);
    expect(stderr).toMatch(/usage: gradprune inspect <model-dir> \[--json\] \[--no-gpu\]/);
  });
});

/** Collects what a command prints. */
function memoryIO(): CliIO & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += `${t}\n`), err: (t: string) => void (io.stderr += `${t}\n`) };
  return io;
}

const echo: Command = {
  name: 'echo',
  summary: 'Repeat a word.',
  positionals: [{ name: 'word', description: 'what to say' }, { name: 'extra', description: 'more', optional: true }],
  options: { times: { type: 'string', short: 'n', valueName: 'N', description: 'how many times' }, loud: { type: 'boolean', description: 'upper case' } },
  async run({ positionals, options }, io) {
    const times = intOption(options, 'times', 1, { min: 1, max: 5 });
    const word = options.loud ? positionals.word!.toUpperCase() : positionals.word!;
    io.out(Array(times).fill(word).join(' '));
    return 0;
  },
};
const failing = (err: unknown): Command => ({ name: 'fail', summary: 'Fail.', positionals: [], options: {}, run: async () => Promise.reject(err) });

describe('main: command table, parsing, help and errors', () => {
  it('runs a command with positionals and options', async () => {
    const io = memoryIO();
    expect(await main(['echo', 'hi', '-n', '3', '--loud'], io, [echo])).toBe(0);
    expect(io.stdout).toBe('HI HI HI\n');
  });
  it('prints the command list for --help and a command\'s options for <command> --help', async () => {
    const io = memoryIO();
    expect(await main(['--help'], io, [echo])).toBe(0);
    expect(io.stdout).toMatch(/commands:\n\s+echo\s+Repeat a word\./);
    const io2 = memoryIO();
    expect(await main(['echo', '--help'], io2, [echo])).toBe(0);
    expect(io2.stdout).toMatch(/usage: gradprune echo <word> \[extra\] \[--times N\] \[--loud\]/);
    expect(io2.stdout).toMatch(/-n, --times N\s+how many times/);
  });
  it('exits 2 for an unknown command, an unknown option, a bad value, or too many arguments', async () => {
    for (const [argv, message] of [
      [['nope'], /unknown command "nope"\. Commands: echo/],
      [['echo', 'hi', '--bogus'], /Unknown option '--bogus'\./],
      [['echo', 'hi', '--times', 'x'], /--times must be a whole number \(got "x"\)/],
      [['echo', 'hi', '--times', '9'], /--times must be at most 5 \(got 9\)/],
      [['echo', 'a', 'b', 'c'], /unexpected argument "c"/],
      [[], /usage: gradprune <command>/],
    ] as const) {
      const io = memoryIO();
      expect(await main([...argv], io, [echo]), argv.join(' ')).toBe(2);
      expect(io.stderr).toMatch(message);
    }
  });
  it('prints a GradPruneError as one line with exit 1, and a bug with its stack and exit 70', async () => {
    const io = memoryIO();
    expect(await main(['fail'], io, [failing(new GradPruneError('file', 'weights.bin is truncated.', { hint: 'Download it again.' }))])).toBe(1);
    expect(io.stderr).toBe('gradprune: weights.bin is truncated. Download it again.\n');
    const io2 = memoryIO();
    expect(await main(['fail'], io2, [failing(new TypeError('x is undefined'))])).toBe(70);
    expect(io2.stderr).toMatch(/^gradprune: internal error: x is undefined\. This is a bug/);
    expect(io2.stderr).toMatch(/\n\s+at /);
  });
});
