import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DEMO, FIXTURE_MODELS, SHARED, fixtureDir } from '../testing/paths';
import { openFolder } from './node-files';
import { loadTokenizer } from './tokenizer';

interface TokenizeRow {
  text: string;
  ids: number[];
  ids_no_special: number[];
}

// The demo's reference lives beside the shared copy of the demo model (public/demo ships no reference/).
const CASES = [
  ...FIXTURE_MODELS.map((m) => ({ name: m, modelDir: fixtureDir(m), reference: path.join(fixtureDir(m), 'reference/tokenize.json') })),
  { name: 'demo', modelDir: DEMO, reference: path.join(SHARED, 'demo/reference/tokenize.json') },
];

describe('tokenizer ids match the Rust tokenizers reference', () => {
  for (const c of CASES) {
    it(`${c.name}: every reference string, with and without special tokens`, async () => {
      const tok = await loadTokenizer(await openFolder(c.modelDir));
      const rows: TokenizeRow[] = JSON.parse(await readFile(c.reference, 'utf8'));
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(tok.encode(row.text), JSON.stringify(row.text)).toEqual(row.ids);
        expect(tok.encode(row.text, { addSpecialTokens: false }), JSON.stringify(row.text)).toEqual(row.ids_no_special);
      }
    });
  }

  it('knows the special tokens the reference ids begin with', async () => {
    // tiny-random-llama-2's config says bos 0, but its tokenizer (and the reference ids) start with <s> = 1.
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
    const rows: TokenizeRow[] = JSON.parse(await readFile(path.join(fixtureDir('tiny-random-llama-2'), 'reference/tokenize.json'), 'utf8'));
    expect(tok.bosTokenId).toBe(rows[0].ids[0]);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.vocabSize).toBe(32000);
  });

  it('decodes reference ids back to the text when special tokens are skipped', async () => {
    const tok = await loadTokenizer(await openFolder(DEMO));
    const rows: TokenizeRow[] = JSON.parse(await readFile(path.join(SHARED, 'demo/reference/tokenize.json'), 'utf8'));
    const simple = rows.find((r) => r.text === 'Hello world');
    expect(simple).toBeDefined();
    expect(tok.decode(simple!.ids)).toBe('Hello world');
  });
});

describe('tokenizer errors', () => {
  it('names a missing tokenizer_config.json', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    files.delete('tokenizer_config.json');
    const err = await loadTokenizer(files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).message).toMatch(/tokenizer_config\.json is missing/);
  });
  it('names a tokenizer.json that is not JSON', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    files.set('tokenizer.json', new Blob(['{"model": ']));
    await expect(loadTokenizer(files)).rejects.toThrow(/tokenizer\.json is not valid JSON/);
  });
});
