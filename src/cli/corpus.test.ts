// The hostile-input corpus (test/corpus): every broken or awkward input a person might give, run through the real
// CLI entry point (main) in-process. Each case must end with a message that names the file / tensor / row and what
// to do, with exit code 1 (2 for a bad command line), never "internal error", and within a time bound.
// Cases are listed in test/corpus/cases.json; their files are in test/corpus/cases/<id>/ (test/corpus/build.mjs).
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, fixtureDir } from '../testing/paths';
import type { CliIO } from './command';
import { main } from './main';

const CORPUS = path.join(REPO_ROOT, 'test/corpus');

interface CorpusCase {
  id: string;
  /** What the input is, in words. */
  about: string;
  /** The command line; {model} is the case's model folder, {case} its own files, {tmp} the case's temp folder. */
  args: string[];
  /** A regular expression the stderr must match. */
  expect: string;
  exit?: number;
  /** Model files to delete from the copy before the case's own are laid over it. */
  remove?: string[];
  /** Paths (relative to {tmp}) to turn into folders. */
  dirs?: string[];
  /** Symbolic links to make: path relative to {tmp} → target. */
  symlinks?: Record<string, string>;
  /** Permissions to set: path relative to {tmp} → mode (skipped as root, who reads anything). */
  chmod?: Record<string, number>;
  /** An input too large to commit, made at test time (GENERATORS below). */
  generate?: keyof typeof GENERATORS;
  /** Milliseconds the case may take (default 15 s). */
  timeoutMs?: number;
}

const nested = (depth: number, inner = '') => '['.repeat(depth) + inner + ']'.repeat(depth);
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

/** A file of `bytes` that costs no disk: `start` written, the rest a hole. */
async function sparse(file: string, bytes: number, start = '') {
  await writeFile(file, start);
  await truncate(file, bytes);
}

/** Big inputs, written into the case's temp folder. */
const GENERATORS = {
  configHuge: (tmp: string) => sparse(path.join(tmp, 'model/config.json'), 2 ** 30, '{"model_type": "llama", '),
  tokenizerHuge: (tmp: string) => sparse(path.join(tmp, 'model/tokenizer.json'), 2 ** 30, '{"model": '),
  indexHuge: (tmp: string) => sparse(path.join(tmp, 'model/model.safetensors.index.json'), 2 ** 30, '{"weight_map": '),
  datasetHuge: (tmp: string) => sparse(path.join(tmp, 'case/train.jsonl'), 600 * 2 ** 20, '{"text": "a row"}\n'.repeat(5000)),
  /** A 32 MB header whose __metadata__ is 16 M nested arrays (once a stack overflow at 1.8 GB resident). */
  async metadataNested32MB(tmp: string) {
    const header = `{"__metadata__":${nested(16_000_000)}}`;
    await writeFile(path.join(tmp, 'model/model.safetensors'), Buffer.concat([u64(header.length), Buffer.from(header)]));
  },
  /** A 99 MB header of nested arrays, just inside the format's 100 MB limit (once a hang). */
  async headerNested99MB(tmp: string) {
    const header = `{"a":${nested(49_000_000)}}`;
    await writeFile(path.join(tmp, 'model/model.safetensors'), Buffer.concat([u64(header.length), Buffer.from(header)]));
  },
  async indexNested(tmp: string) {
    await writeFile(path.join(tmp, 'model/model.safetensors.index.json'), `{"weight_map":${nested(1_000_000)}}`);
  },
  async configNested(tmp: string) {
    const config = JSON.parse(await readFile(path.join(tmp, 'model/config.json'), 'utf8'));
    await writeFile(path.join(tmp, 'model/config.json'), JSON.stringify(config).replace(/}$/, `,"x":${nested(1_000_000)}}`));
  },
  async tokenizerNested(tmp: string) {
    await writeFile(path.join(tmp, 'model/tokenizer.json'), `{"model":${nested(1_000_000, '1')}}`);
  },
  async datasetJsonNested(tmp: string) {
    await writeFile(path.join(tmp, 'case/train.json'), nested(5_000_000));
  },
  async datasetJsonlNested(tmp: string) {
    await writeFile(path.join(tmp, 'case/train.jsonl'), `{"text": ${nested(1_000_000)}}\n{"text": ${nested(1_000_000)}}\n`);
  },
  async datasetCsvUnclosedQuoteLarge(tmp: string) {
    const rows = Array.from({ length: 200_000 }, (_, i) => `row ${i},${i % 2}`);
    rows.splice(1000, 0, '"never closed,1');
    await writeFile(path.join(tmp, 'case/train.csv'), `text,label\n${rows.join('\n')}\n`);
  },
} satisfies Record<string, (tmp: string) => Promise<void>>;

const cases: CorpusCase[] = JSON.parse(await readFile(path.join(CORPUS, 'cases.json'), 'utf8'));
const isRoot = process.getuid?.() === 0;
const temps: string[] = [];
afterAll(async () => {
  for (const t of temps) {
    await chmodTree(t);
    await rm(t, { recursive: true, force: true });
  }
});

async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755).catch(() => undefined);
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chmodTree(p);
    else if (!e.isSymbolicLink()) await chmod(p, 0o644).catch(() => undefined);
  }
}

/** The case's temp folder: model/ (tiny-llama, less `remove`, with the case's model/ over it), case/ (its other files). */
async function prepare(c: CorpusCase): Promise<string> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `gradprune-corpus-${c.id}-`));
  temps.push(tmp);
  const model = path.join(tmp, 'model');
  await mkdir(model);
  const base = fixtureDir('tiny-llama');
  for (const name of await readdir(base)) {
    if ((await stat(path.join(base, name))).isFile() && !c.remove?.includes(name)) {
      await writeFile(path.join(model, name), await readFile(path.join(base, name)));
    }
  }
  const own = path.join(CORPUS, 'cases', c.id);
  await mkdir(path.join(tmp, 'case'));
  for (const name of await readdir(own).catch(() => [])) {
    await cp(path.join(own, name), name === 'model' ? model : path.join(tmp, 'case', name), { recursive: true });
  }
  for (const d of c.dirs ?? []) await mkdir(path.join(tmp, d), { recursive: true });
  for (const [link, target] of Object.entries(c.symlinks ?? {})) await symlink(target, path.join(tmp, link));
  if (c.generate) await GENERATORS[c.generate](tmp);
  for (const [file, mode] of Object.entries(c.chmod ?? {})) await chmod(path.join(tmp, file), mode);
  return tmp;
}

describe('the hostile-input corpus, through the CLI', () => {
  it('has at least 60 cases, each with its files or a generator, and no orphan case folders', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    const ids = new Set(cases.map((c) => c.id));
    expect(ids.size).toBe(cases.length);
    for (const folder of await readdir(path.join(CORPUS, 'cases'))) expect(ids, `test/corpus/cases/${folder} has no entry in cases.json`).toContain(folder);
  });

  for (const c of cases) {
    it.skipIf(c.chmod !== undefined && isRoot)(`${c.id}: ${c.about}`, async () => {
      const tmp = await prepare(c);
      const fill = (a: string) => a.replaceAll('{model}', path.join(tmp, 'model')).replaceAll('{case}', path.join(tmp, 'case')).replaceAll('{tmp}', tmp);
      let stderr = '';
      const io: CliIO = { out: () => undefined, err: (t) => void (stderr += `${t}\n`) };
      const started = performance.now();
      const code = await main(c.args.map(fill), io);
      const ms = performance.now() - started;
      const message = stderr.replaceAll(tmp, '{tmp}');
      expect(message).not.toMatch(/internal error|This is a bug/);
      expect(message).toMatch(new RegExp(c.expect));
      expect(code, message).toBe(c.exit ?? 1);
      expect(ms, `${c.id} took ${ms.toFixed(0)} ms`).toBeLessThan(c.timeoutMs ?? 15_000);
    });
  }
});
