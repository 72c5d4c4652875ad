// Every file in ../shared/datasets loads with the right format; row counts are counted here independently of
// src/data (lines, JSON.parse, papaparse) and checked against the numbers SOURCE.md states.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { openFile } from '../model/node-files';
import { DATASETS, DEMO } from '../testing/paths';
import { readDataset, type Dataset, type DatasetFormat, type MultipleChoiceSchema } from './index';

const file = (rel: string) => path.join(DATASETS, rel);
const load = async (rel: string) => readDataset(await openFile(file(rel)), path.basename(rel));
const jsonLines = (rel: string) =>
  readFileSync(file(rel), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
const csvRows = (rel: string) => Papa.parse<Record<string, string>>(readFileSync(file(rel), 'utf8'), { header: true, skipEmptyLines: true }).data;

function independentCount(rel: string): number {
  if (rel.endsWith('.jsonl')) return jsonLines(rel).length;
  if (rel.endsWith('.csv')) return csvRows(rel).length;
  const parsed = JSON.parse(readFileSync(file(rel), 'utf8'));
  return Array.isArray(parsed) ? parsed.length : Object.keys(parsed).length;
}

// [file, format, schema, count stated in SOURCE.md (null where it states none)]
const FILES: [string, DatasetFormat, MultipleChoiceSchema | null, number | null][] = [
  ['alpaca/alpaca_tiny.json', 'instruction', null, 100],
  ['alpaca/alpaca_5000_pr152.json', 'instruction', null, 5000],
  ['arc/arc_easy.jsonl', 'multiple-choice', 'mosaicml', 2376],
  ['arc/arc_challenge.jsonl', 'multiple-choice', 'mosaicml', 1172],
  ['piqa/piqa.jsonl', 'multiple-choice', 'mosaicml', 1838],
  ['winogrande/winogrande.jsonl', 'multiple-choice', 'winogrande', 1267],
  ['hellaswag/hellaswag_val_1000.jsonl', 'multiple-choice', 'hellaswag', 1000],
  ['hellaswag/llmfoundry_hellaswag_small.jsonl', 'multiple-choice', 'mosaicml', null],
  ['pubmedqa/ori_pqal.json', 'multiple-choice', 'pubmedqa', 1000],
  ['pubmedqa/llmfoundry_pubmed_qa_labeled.jsonl', 'prompt-completion', null, null],
  ['fin-sentiment/fpb_test.csv', 'multiple-choice', 'classification', 2264],
  ['fin-sentiment/fiqasa_train.csv', 'multiple-choice', 'classification', 750],
  ['fin-sentiment/fiqasa_valid.csv', 'multiple-choice', 'classification', 188],
  ['fin-sentiment/fiqasa_test.csv', 'multiple-choice', 'classification', 235],
];

const MEDMCQA = readdirSync(file('medmcqa/validation')).filter((n) => n.endsWith('.jsonl')).sort();

describe('shared datasets', () => {
  it('lists every dataset file in this test (nothing in ../shared/datasets is skipped)', () => {
    const all = (dir: string): string[] =>
      readdirSync(file(dir), { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? all(path.join(dir, d.name)) : [path.join(dir, d.name)]));
    const data = all('.').filter((f) => /\.(jsonl?|csv|parquet)$/.test(f));
    const covered = new Set([...FILES.map(([f]) => f), ...MEDMCQA.map((n) => `medmcqa/validation/${n}`), 'pubmedqa/test_ground_truth.json']);
    expect(data.filter((f) => !covered.has(f))).toEqual([]);
  });

  it.each(FILES)('%s loads as %s (%s) with every row accounted for', async (rel, format, schema, stated) => {
    const ds = await load(rel);
    const count = independentCount(rel);
    if (stated !== null) expect(count).toBe(stated);
    expect(ds.format).toBe(format);
    expect(ds.multipleChoiceSchema).toBe(schema);
    expect(ds.totalRows).toBe(count);
    expect(ds.examples.length + ds.rejected.length).toBe(count);
    if (format === 'multiple-choice') expect(ds.multipleChoice.length).toBe(ds.examples.length);
  });

  it('alpaca: the Alpaca prompt + output reproduces the data set\'s own "text" column; empty outputs are rejected by index', async () => {
    const tiny = await load('alpaca/alpaca_tiny.json');
    const raw = JSON.parse(readFileSync(file('alpaca/alpaca_tiny.json'), 'utf8')) as { text: string }[];
    expect(tiny.rejected).toEqual([]);
    tiny.examples.forEach((e) => {
      if (e.kind !== 'text') throw new Error('expected text examples');
      expect(e.prompt + e.target).toBe(raw[e.line].text);
    });
    const big = await load('alpaca/alpaca_5000_pr152.json');
    const rawBig = JSON.parse(readFileSync(file('alpaca/alpaca_5000_pr152.json'), 'utf8')) as { output: string }[];
    const empty = rawBig.flatMap((r, i) => (r.output.trim() === '' ? [i] : []));
    expect(empty.length).toBeGreaterThan(0);
    expect(big.rejected.map((r) => r.line)).toEqual(empty);
    expect(big.rejected[0].where).toBe(`element ${empty[0]}`);
    expect(big.rejected[0].reason).toMatch(/output.*empty/);
  });

  it('ARC / PIQA (llm-foundry): gold choice and lm-eval prompt match the raw rows', async () => {
    for (const rel of ['arc/arc_easy.jsonl', 'piqa/piqa.jsonl']) {
      const ds = await load(rel);
      const raw = jsonLines(rel) as { query: string; choices: string[]; gold: number }[];
      ds.examples.forEach((e) => {
        if (e.kind !== 'text' || !e.mc) throw new Error('expected multiple-choice examples');
        const r = raw[e.line - 1];
        expect(e.prompt).toBe(`${r.query.trimEnd()}\nAnswer:`);
        expect(e.target).toBe(` ${r.choices[r.gold]}`);
        expect(e.mc.gold).toBe(r.gold);
        expect(e.mc.requests.map((q) => q.continuation)).toEqual(r.choices.map((c) => ` ${c}`));
        expect(e.mc.partial).toBe(false);
      });
    }
  });

  it('WinoGrande: partial scoring items (one context per option, the shared continuation)', async () => {
    const ds = await load('winogrande/winogrande.jsonl');
    const raw = jsonLines('winogrande/winogrande.jsonl') as { context_options: string[]; continuation: string; gold: number }[];
    const first = ds.multipleChoice[0];
    expect(first).toMatchObject({
      line: 1,
      partial: true,
      gold: 1,
      context: 'Sarah was a much better surgeon than Maria so ',
      choices: ['Sarah', 'Maria'],
    });
    ds.multipleChoice.forEach((mc) => {
      const r = raw[mc.line - 1];
      expect(mc.requests.map((q) => q.context)).toEqual(r.context_options);
      expect(mc.requests.every((q) => q.continuation === ` ${r.continuation.trim()}`)).toBe(true);
      expect(mc.gold).toBe(r.gold);
    });
  });

  it('HellaSwag (rowanz): lm-eval preprocessing and the label as gold', async () => {
    const ds = await load('hellaswag/hellaswag_val_1000.jsonl');
    const raw = jsonLines('hellaswag/hellaswag_val_1000.jsonl') as { label: number; endings: string[] }[];
    // Row 1 by hand: activity_label + ": " + ctx_a + " " + ctx_b.capitalize().
    expect(ds.multipleChoice[0].context).toBe('Pole vault: Pole vault is a sport where you run with a pole and stop and swing your body. A few women');
    expect(ds.multipleChoice[0].choices[3]).toBe('are in the gym practicing to do this pole vault, trying to do their best.');
    ds.multipleChoice.forEach((mc) => {
      expect(mc.gold).toBe(raw[mc.line - 1].label);
      expect(mc.choices).toHaveLength(4);
    });
  });

  it('MedMCQA: all 21 subject files (4183 items); the answer field names the gold option', async () => {
    let total = 0;
    for (const name of MEDMCQA) {
      const rel = `medmcqa/validation/${name}`;
      const ds = await load(rel);
      const raw = jsonLines(rel) as { answer: string }[];
      expect(ds.format).toBe('multiple-choice');
      expect(ds.multipleChoiceSchema).toBe('question');
      expect(ds.rejected).toEqual([]);
      expect(ds.examples.length).toBe(raw.length);
      ds.multipleChoice.forEach((mc) => {
        expect(raw[mc.line - 1].answer).toBe(`${'ABCD'[mc.gold]}. ${mc.choices[mc.gold]}`);
        expect(mc.requests.map((q) => q.continuation)).toEqual([' A', ' B', ' C', ' D']);
      });
      total += ds.examples.length;
    }
    expect(MEDMCQA).toHaveLength(21);
    expect(total).toBe(4183);
  });

  it('PubMedQA: ori_pqal.json (object keyed by id) and the llm-foundry jsonl give yes552 / no338 / maybe110', async () => {
    const ori = await load('pubmedqa/ori_pqal.json');
    const foundry = await load('pubmedqa/llmfoundry_pubmed_qa_labeled.jsonl');
    for (const ds of [ori, foundry]) {
      const counts = [0, 0, 0];
      ds.multipleChoice.forEach((mc) => counts[mc.gold]++);
      expect(ds.multipleChoice.map((mc) => mc.choices)[0]).toEqual(['yes', 'no', 'maybe']);
      expect(counts).toEqual([552, 338, 110]);
    }
    expect(ori.lineKind).toBe('element');
    // JS lists integer-like keys in numeric order, so the file's first key is read from the text.
    const firstId = /^\s*\{\s*"(\d+)"/.exec(readFileSync(file('pubmedqa/ori_pqal.json'), 'utf8'))![1];
    const e = ori.examples[0];
    if (e.kind !== 'text') throw new Error('expected text');
    expect(e.prompt.startsWith('Abstract: ')).toBe(true);
    expect(e.prompt.endsWith('\nQuestion: Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?\nAnswer:')).toBe(true);
    expect(firstId).toBe('21645374');
    expect(ori.rejected).toEqual([]);
    expect(ori.multipleChoice[0].line).toBe(0);
    // The llm-foundry prompt ends in "Answer: " and the completion is "yes": the space moves into the continuation.
    expect(foundry.multipleChoice[0].requests[0]).toEqual({ context: expect.stringMatching(/\nC\. maybe\nAnswer:$/), continuation: ' yes' });
  });

  it('financial sentiment CSVs: sentence + label → choices negative / neutral / positive, gold = the label', async () => {
    for (const rel of ['fin-sentiment/fpb_test.csv', 'fin-sentiment/fiqasa_train.csv']) {
      const ds: Dataset = await load(rel);
      const raw = csvRows(rel);
      expect(ds.multipleChoice[0].choices).toEqual(['negative', 'neutral', 'positive']);
      ds.multipleChoice.forEach((mc, i) => expect(mc.choices[mc.gold]).toBe(raw[i].label.trim()));
      expect(ds.multipleChoice[0].line).toBe(2); // line 1 is the header
    }
  });

  it('the demo dataset public/demo/arc_easy_300.jsonl loads (300 llm-foundry ARC rows)', async () => {
    const rel = path.join(DEMO, 'arc_easy_300.jsonl');
    const ds = await readDataset(await openFile(rel), 'arc_easy_300.jsonl');
    const lines = readFileSync(rel, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
    expect(lines).toBe(300);
    expect([ds.format, ds.multipleChoiceSchema, ds.examples.length, ds.rejected.length]).toEqual(['multiple-choice', 'mosaicml', 300, 0]);
  });

  it('PubMedQA test_ground_truth.json (ids → labels, no text) is refused with a reason naming the file', async () => {
    const err = await load('pubmedqa/test_ground_truth.json').catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('dataset');
    expect(err.message).toMatch(/test_ground_truth\.json is a JSON object whose values are a string/);
  });
});
