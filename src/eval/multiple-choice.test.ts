// Multiple-choice scoring the lm-evaluation-harness way: the context/continuation split on hand-written cases and
// real tokenizers (checked against tokenize.json), log-likelihoods against sums of the fixtures' logits, acc and
// acc_norm, batching and left truncation.
import { describe, expect, it } from 'vitest';
import { readDataset } from '../data';
import type { MultipleChoiceItem } from '../data/types';
import { GradPruneError } from '../errors';
import { openFile, openFolder } from '../model/node-files';
import { loadTokenizer } from '../model/tokenizer';
import { loadFixtureModel, openReference } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { DATASETS, fixtureDir } from '../testing/paths';
import { referenceScoringModel } from './engines';
import { encodePair, scoreRequests, splitTrailingWhitespace } from './harness';
import { accuracyOf, normalizationLength, scoreMultipleChoice } from './multiple-choice';
import path from 'node:path';
import { readFile } from 'node:fs/promises';

const tokenizeFixture = async (name: string): Promise<Array<{ text: string; ids: number[]; ids_no_special: number[] }>> =>
  JSON.parse(await readFile(path.join(fixtureDir(name), 'reference', 'tokenize.json'), 'utf8'));

describe("lm-evaluation-harness's context/continuation split", () => {
  it('moves trailing whitespace of the context to the continuation', () => {
    expect(splitTrailingWhitespace('Question: Is it?\nAnswer: ', 'yes')).toEqual({ context: 'Question: Is it?\nAnswer:', continuation: ' yes' });
    expect(splitTrailingWhitespace('Answer:\n \n', 'B')).toEqual({ context: 'Answer:', continuation: '\n \nB' });
    expect(splitTrailingWhitespace('Answer:', ' yes')).toEqual({ context: 'Answer:', continuation: ' yes' });
  });

  it('encodes the continuation as the tail of the whole text (Llama-2 tokenizer, tokenize.json)', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
    const row = (await tokenizeFixture('tiny-random-llama-2')).find((r) => r.text === 'Question: Is aspirin an NSAID?\nAnswer: yes')!;
    // The context ends with the space, as a prompt template often does; the harness scores " yes" as one token.
    const r = encodePair(tok, 'Question: Is aspirin an NSAID?\nAnswer: ', 'yes');
    expect([...r.contextIds, ...r.continuationIds]).toEqual(row.ids_no_special);
    expect(r.continuationIds).toEqual(row.ids_no_special.slice(-1)); // "▁yes"
    // No BOS by default (the harness's add_bos_token=False); with addBos, both encodings start with it.
    expect(r.contextIds[0]).not.toBe(tok.bosTokenId);
    const withBos = encodePair(tok, 'Question: Is aspirin an NSAID?\nAnswer:', ' yes', { addBos: true });
    expect([...withBos.contextIds, ...withBos.continuationIds]).toEqual(row.ids);
  });

  it('encodes the same way with the tiny models’ tokenizer (tokenize.json)', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
    const row = (await tokenizeFixture('tiny-llama')).find((r) => r.text === 'The quick brown fox jumps over the lazy dog.')!;
    const r = encodePair(tok, 'The quick brown fox jumps over the lazy ', 'dog.');
    expect([...r.contextIds, ...r.continuationIds]).toEqual(row.ids_no_special);
    expect(r.continuationIds.length).toBeGreaterThan(0);
  });

  it('scores an empty context after the BOS token', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
    const row = (await tokenizeFixture('tiny-random-llama-2')).find((r) => r.text === 'Hello world')!;
    expect(encodePair(tok, '', 'Hello world')).toEqual({ contextIds: [row.ids[0]], continuationIds: row.ids_no_special });
    // A whitespace-only context moves entirely into the continuation and is scored the same way.
    const ws = encodePair(tok, '  ', 'leading spaces and\ttabs\nnew lines');
    const spaces = (await tokenizeFixture('tiny-random-llama-2')).find((r) => r.text === '  leading spaces and\ttabs\nnew lines')!;
    expect(ws).toEqual({ contextIds: [row.ids[0]], continuationIds: spaces.ids_no_special });
  });

  it('WinoGrande: each choice fills the blank in its context; the shared rest of the sentence is scored', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
    const ds = await readDataset(await openFile(path.join(DATASETS, 'winogrande', 'winogrande.jsonl')), 'winogrande.jsonl');
    const item = ds.multipleChoice[0];
    expect(item.partial).toBe(true);
    expect(item.requests.map((r) => r.context)).toEqual([
      'Sarah was a much better surgeon than Maria so Sarah',
      'Sarah was a much better surgeon than Maria so Maria',
    ]);
    const [a, b] = item.requests.map((r) => encodePair(tok, r.context, r.continuation));
    // The same continuation tokens after either name; the contexts differ only in the filled-in option.
    expect(a.continuationIds).toEqual(b.continuationIds);
    expect(tok.decode(a.continuationIds)).toBe('always got the easier cases.');
    expect(a.contextIds).not.toEqual(b.contextIds);
  });
});

describe('log-likelihoods against the fixture logits (tiny-llama)', () => {
  it('sums log-softmax of the continuation tokens, whatever the batching', async () => {
    const dir = fixtureDir('tiny-llama');
    const { weights } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const V = weights.config.vocabSize;
    const ids = Array.from(await ref.readI32('input_ids'));
    const logits = await ref.readF32('logits');
    const seq = (b: number) => ids.slice(b * T, (b + 1) * T);
    // By hand from the fixture: Σ over continuation tokens k of log softmax(logits[b, k-1])[ids[b, k]].
    const handSum = (b: number, from: number, to: number) => {
      let s = 0;
      for (let k = from; k < to; k++) {
        const row = logits.subarray((b * T + k - 1) * V, (b * T + k) * V);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0));
        s += row[ids[b * T + k]] - lse;
      }
      return s;
    };
    expect(B).toBe(2);
    const requests = [
      { contextIds: seq(0).slice(0, 12), continuationIds: seq(0).slice(12) },
      { contextIds: seq(0).slice(0, 12), continuationIds: seq(0).slice(12, 16) },
      { contextIds: seq(1).slice(0, 5), continuationIds: seq(1).slice(5) },
      { contextIds: seq(1).slice(0, 1), continuationIds: seq(1).slice(1, 2) },
    ];
    const expected = [handSum(0, 12, T), handSum(0, 12, 16), handSum(1, 5, T), handSum(1, 1, 2)];
    const model = referenceScoringModel(new ReferenceModel(weights), 64);
    for (const batchSize of [1, 3, 8]) {
      const scores = await scoreRequests(model, requests, { batchSize });
      scores.forEach((s, i) => {
        expect(Math.abs(s.logLikelihood - expected[i]), `request ${i}, batch ${batchSize}`).toBeLessThan(2e-4 * (1 + Math.abs(expected[i])));
        expect(s.truncatedTokens).toBe(0);
      });
      expect(scores.map((s) => s.tokens)).toEqual([12, 4, 19, 1]);
    }
    // The same requests as one multiple-choice question: acc picks the largest sum.
    const choices = ['a', 'b', 'c', 'd'];
    const item: MultipleChoiceItem = { line: 1, context: '', choices, gold: 1, requests: choices.map((c) => ({ context: '', continuation: ` ${c}` })), partial: false };
    const acc = accuracyOf([item], [expected]);
    expect(acc.scores[0].pred).toBe(expected.indexOf(Math.max(...expected)));
  });

  it('cuts long requests from the left to the model length and counts them', async () => {
    const dir = fixtureDir('tiny-llama');
    const { weights } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const T = ref.info('input_ids').shape[1];
    const ids = Array.from(await ref.readI32('input_ids')).slice(0, T);
    const short = referenceScoringModel(new ReferenceModel(weights), 10);
    const [cut] = await scoreRequests(short, [{ contextIds: ids.slice(0, 20), continuationIds: ids.slice(20) }]);
    expect(cut.truncatedTokens).toBe(T - 10);
    // Equal to scoring the last 10 tokens as they are.
    const [direct] = await scoreRequests(short, [{ contextIds: ids.slice(T - 10, 20), continuationIds: ids.slice(20) }]);
    expect(cut.logLikelihood).toBe(direct.logLikelihood);
    const err = await scoreRequests(short, [{ contextIds: [1], continuationIds: ids.slice(0, 10) }], { describe: () => 'line 7, choice 2' }).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/line 7, choice 2: the continuation has 10 tokens, but the model holds only 10/);
    const empty = await scoreRequests(short, [{ contextIds: [1], continuationIds: [] }]).catch((e) => e);
    expect(empty.message).toMatch(/encodes to no tokens/);
  });
});

describe('acc and acc_norm', () => {
  const item = (continuations: string[], gold: number, partial = false, contexts?: string[]): MultipleChoiceItem => ({
    line: 3,
    context: 'Q:',
    choices: continuations.map((c) => c.trim()),
    gold,
    requests: continuations.map((continuation, i) => ({ context: contexts?.[i] ?? 'Q:', continuation })),
    partial,
  });

  it('divides by the choice length in characters, without the one-space delimiter (harness doc_to_choice)', () => {
    const it1 = item([' a', ' bbbb'], 1);
    expect([0, 1].map((c) => normalizationLength(it1, c))).toEqual([1, 4]);
    // acc: -2 > -4 picks choice 0; acc_norm: -2/1 < -4/4 picks choice 1.
    const r = accuracyOf([it1], [[-2, -4]]);
    expect(r.scores[0]).toMatchObject({ pred: 0, predNorm: 1 });
    expect(r.acc).toBe(0);
    expect(r.accNorm).toBe(1);
    // Code points, as Python's len: "東京" is 2, "🙂" is 1.
    expect(normalizationLength(item([' 東京', ' 🙂'], 0), 0)).toBe(2);
    expect(normalizationLength(item([' 東京', ' 🙂'], 0), 1)).toBe(1);
  });

  it('WinoGrande partial items normalise by the filled-in context (the harness choice)', () => {
    const w = item([' ran.', ' ran.'], 0, true, ['Tom so Tom', 'Tom so Alexandra']);
    expect(normalizationLength(w, 1)).toBe('Tom so Alexandra'.length);
  });

  it('ties go to the first choice and accuracy averages over items', () => {
    const r = accuracyOf([item([' x', ' y'], 0), item([' x', ' y'], 1), item([' x', ' y'], 1)], [[-1, -1], [-3, -1], [-1, -3]]);
    expect(r.scores.map((s) => s.pred)).toEqual([0, 1, 0]);
    expect(r.acc).toBeCloseTo(2 / 3, 12);
    expect(r.items).toBe(3);
  });
});

describe('scoreMultipleChoice on real task files (tiny-llama, CPU reference)', () => {
  it.each([
    ['arc', 'arc_easy.jsonl'],
    ['piqa', 'piqa.jsonl'],
    ['winogrande', 'winogrande.jsonl'],
    ['hellaswag', 'hellaswag_val_1000.jsonl'],
    ['pubmedqa', 'ori_pqal.json'],
    ['medmcqa/validation', 'Anatomy.jsonl'],
  ])('%s: one score per choice, equal to scoring each choice alone', async (folder, file) => {
    const dir = fixtureDir('tiny-llama');
    const files = await openFolder(dir);
    const tok = await loadTokenizer(files);
    const { weights } = await loadFixtureModel(dir);
    const model = referenceScoringModel(new ReferenceModel(weights), 512);
    const ds = await readDataset(await openFile(path.join(DATASETS, folder, file)), file);
    const items = ds.multipleChoice.slice(0, 2);
    expect(items.length).toBe(2);
    const r = await scoreMultipleChoice(model, tok, items, { batchSize: 4 });
    expect(r.items).toBe(2);
    expect(r.requests).toBe(items.reduce((s, i) => s + i.requests.length, 0));
    expect(r.scores.map((s) => s.logLikelihoods.length)).toEqual(items.map((i) => i.choices.length));
    // Batched (with right padding) and alone agree: padding never leaks into a row's scores.
    const first = items[0];
    for (let c = 0; c < first.requests.length; c++) {
      const [alone] = await scoreRequests(model, [encodePair(tok, first.requests[c].context, first.requests[c].continuation)], { batchSize: 1 });
      expect(Math.abs(alone.logLikelihood - r.scores[0].logLikelihoods[c])).toBeLessThan(1e-3);
      expect(alone.logLikelihood).toBeLessThan(0);
    }
    expect([0, 0.5, 1]).toContain(r.acc);
  });
});
