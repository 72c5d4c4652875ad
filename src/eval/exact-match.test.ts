// Exact match of generated answers: the normaliser against hand-written SQuAD-style cases; which rows have a prompt
// and label (prompt/answer, classification, plain text) on real files; greedy answers of tiny-llama on the CPU
// reference scored against the fixture's Hugging Face logits (the first token) and against the reference's own
// greedy continuation written plainly in src/testing (several tokens).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDataset } from '../data/dataset';
import { buildExamples } from '../data/tokenize';
import { GradPruneError } from '../errors';
import { openFile, openFolder } from '../model/node-files';
import { loadTokenizer } from '../model/tokenizer';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { forwardFirstSequence } from '../testing/cli';
import { DATASETS, fixtureDir } from '../testing/paths';
import { referenceGreedy } from '../testing/reference-greedy';
import { referenceScoringModel } from './engines';
import { exactMatchItems, exactMatchOf, fitPrompt, normalizeAnswer, normalizedMatchOf, requireExactMatchItems, scoreExactMatch, type ExactMatchItem } from './exact-match';
import { stopIdsOf } from './generation';

describe('normalizeAnswer (SQuAD rules: case, punctuation, articles, whitespace)', () => {
  it.each([
    ['The Eiffel Tower', 'eiffel tower'],
    ['  Paris.  ', 'paris'],
    ['an apple a day', 'apple day'],
    ["Don't stop!", 'dont stop'],
    ['well-known', 'wellknown'],
    ['Theatre', 'theatre'],
    ['Another answer', 'another answer'],
    ['A', ''],
    ['New\n\tYork', 'new york'],
    ['$1,000', '1000'],
    ['\u201cQuoted\u201d', 'quoted'],
    ['ÉCOLE normale', 'école normale'],
    ['(B) the cat', 'b cat'],
    ['  positive\n', 'positive'],
  ])('%j → %j', (text, expected) => {
    expect(normalizeAnswer(text)).toBe(expected);
  });

  it('exact match trims only; the normalised match forgives case, punctuation, articles and spacing', () => {
    expect(exactMatchOf(' positive\n', 'positive')).toBe(true);
    expect(exactMatchOf('Positive', 'positive')).toBe(false);
    expect(normalizedMatchOf('Positive.', ' positive')).toBe(true);
    expect(exactMatchOf('the  Nile', 'the Nile')).toBe(false);
    expect(normalizedMatchOf('the  Nile', 'Nile')).toBe(true);
    expect(normalizedMatchOf('Nile river', 'Nile')).toBe(false);
  });
});

describe('exactMatchItems', () => {
  it('classification rows: the prompt as trained and the label text', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
    const file = path.join(DATASETS, 'fin-sentiment', 'fpb_test.csv');
    const ds = await readDataset(await openFile(file), 'fpb_test.csv');
    const { items, skipped } = exactMatchItems(ds.examples.slice(0, 2), tok, 'line');
    expect(skipped).toEqual([]);
    // The file's first two rows (line 2 and 3) are labelled neutral and positive.
    expect(items.map((i) => [i.where, i.label.trim()])).toEqual([['line 2', 'neutral'], ['line 3', 'positive']]);
    expect(tok.decode(items[0].promptIds, { skipSpecialTokens: true })).toMatch(/^Sentence: According to Gran .*\nAnswer:$/s);
    expect(items[0].promptIds[0]).toBe(tok.bosTokenId);
    // As many tokens as training marks as the target (classification targets carry no EOS).
    const trained = buildExamples(ds, tok, { maxSeqLen: 512 }).examples[0];
    expect(ds.appendEos).toBe(false);
    expect(items[0].labelTokens).toBe(trained.lossMask.reduce((a, b) => a + b, 0));
    expect(items[0].promptIds).toEqual(trained.inputIds.slice(0, trained.promptLength));
  });

  it('plain text has no label: skipped with the reason, and a set with none is refused naming the file', async () => {
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
    const rows = new Blob(['{"text": "Once upon a time there was a dog."}\n{"text": "The end."}\n']);
    const ds = await readDataset(rows, 'stories.jsonl');
    const { items, skipped } = exactMatchItems(ds.examples, tok, 'line');
    expect(items).toEqual([]);
    expect(skipped).toEqual([
      { where: 'line 1', reason: 'the row is plain text, with no prompt to answer' },
      { where: 'line 2', reason: 'the row is plain text, with no prompt to answer' },
    ]);
    const err = (() => {
      try {
        requireExactMatchItems('stories.jsonl', ds.format, items, skipped);
      } catch (e) {
        return e as GradPruneError;
      }
    })();
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err!.message).toMatch(/^stories\.jsonl: exact match needs rows with a prompt and a label .* none of its 2 text rows has one \(line 1: the row is plain text/);
    expect(err!.hint).toMatch(/--template/);
  });

  it('fitPrompt keeps the first token and the end of a prompt that leaves no room for the answer', () => {
    expect(fitPrompt([1, 2, 3, 4, 5], 2, 10)).toEqual([1, 2, 3, 4, 5]);
    expect(fitPrompt([1, 2, 3, 4, 5, 6, 7, 8, 9], 4, 8)).toEqual([1, 7, 8, 9]);
  });
});

describe('scoreExactMatch on tiny-llama (CPU reference)', () => {
  const dir = fixtureDir('tiny-llama');

  it("scores 1 for the label that is Hugging Face's greedy next token (forward.safetensors) and 0 for another", async () => {
    const { weights, config } = await loadFixtureModel(dir);
    const tok = await loadTokenizer(await openFolder(dir));
    const { ids, nextGreedy } = await forwardFirstSequence('tiny-llama');
    const greedyText = tok.decode([nextGreedy], { skipSpecialTokens: true });
    expect(greedyText.trim()).not.toBe('');
    const other = [...Array(config.vocabSize).keys()].find((v) => v > 3 && tok.decode([v]).trim() !== '' && tok.decode([v]).trim() !== greedyText.trim())!;
    const items: ExactMatchItem[] = [
      { line: 1, where: 'line 1', promptIds: ids, label: greedyText, labelTokens: 1 },
      { line: 2, where: 'line 2', promptIds: ids, label: tok.decode([other]), labelTokens: 1 },
    ];
    const model = referenceScoringModel(new ReferenceModel(weights), 64);
    const r = await scoreExactMatch(model, tok, items, { maxNewTokens: 1, stopIds: [] });
    expect(r.rows.map((x) => x.match)).toEqual([true, false]);
    expect(r.rows[0].generated).toBe(greedyText);
    expect([r.exactMatch, r.items]).toEqual([0.5, 2]);
  });

  it('several tokens: the greedy continuation matches, a changed one does not, a re-cased one only when normalised', async () => {
    const { weights } = await loadFixtureModel(dir);
    const tok = await loadTokenizer(await openFolder(dir));
    const ref = new ReferenceModel(weights);
    const stopIds = stopIdsOf(tok, null);
    const prompts = ['Once upon a time', 'The little dog'].map((p) => tok.encode(p, { addSpecialTokens: true }));
    const continuation = prompts.map((p) => tok.decode(referenceGreedy(ref, p, 5, stopIds), { skipSpecialTokens: true }));
    expect(continuation.every((c) => /[a-z]/.test(c))).toBe(true);
    const item = (i: number, label: string): ExactMatchItem => ({ line: i + 1, where: `line ${i + 1}`, promptIds: prompts[i % 2], label, labelTokens: 5 });
    const items = [item(0, continuation[0]), item(1, continuation[1]), item(2, `${continuation[0]} and more`), item(3, ` ${continuation[1].toUpperCase()}!`)];
    const r = await scoreExactMatch(referenceScoringModel(ref, 64), tok, items, { maxNewTokens: 5, stopIds });
    expect(r.rows.map((x) => [x.match, x.normalizedMatch])).toEqual([[true, true], [true, true], [false, false], [false, true]]);
    expect([r.exactMatch, r.normalizedExactMatch]).toEqual([0.5, 0.75]);
    // The default budget is the label's tokens + the margin: without EOS the answer runs on past the label.
    const long = await scoreExactMatch(referenceScoringModel(ref, 64), tok, [item(0, continuation[0])], { stopIds, margin: 4 });
    expect(long.rows[0].tokens).toBe(long.rows[0].stop === 'eos' ? long.rows[0].tokens : 9);
  });
});
