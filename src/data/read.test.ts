// Reading files and rows: formats detected from columns, overrides, and every kind of bad row reported by location.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DATASETS } from '../testing/paths';
import { readDataset, type Dataset } from './index';
import { jsonErrorOffset } from './read';
import { writeParquet } from './testing/parquet-writer';

const blob = (text: string) => new Blob([text]);
const jsonl = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
const rejectedLines = (ds: Dataset) => ds.rejected.map((r) => [r.line, r.reason]);

async function refusal(p: Promise<unknown>): Promise<GradPruneError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(GradPruneError);
  expect(err.code).toBe('dataset');
  return err;
}

describe('format detection', () => {
  it.each([
    [{ instruction: 'i', input: '', output: 'o' }, 'instruction'],
    [{ prompt: 'p', completion: 'c' }, 'prompt-completion'],
    [{ query: 'q', response: 'r' }, 'prompt-completion'],
    [{ question: 'q', answer: 'a' }, 'prompt-completion'],
    [{ context: 'c', continuation: 'x' }, 'prompt-completion'],
    [{ text: 'hello' }, 'text'],
    [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] }, 'chat'],
    [{ input_ids: [1, 2, 3] }, 'pretokenized'],
    [{ question: 'q', options: 'A. x\nB. y', answer: 'B. y' }, 'multiple-choice'],
    [{ sentence: 's', label: 'positive' }, 'multiple-choice'],
  ])('%o → %s', async (row, format) => {
    const rows = [row, { ...row }];
    if ('label' in row) (rows[1] as Record<string, unknown>).label = 'negative';
    const ds = await readDataset(blob(jsonl(...rows)), 'rows.jsonl');
    expect(ds.format).toBe(format);
    expect(ds.examples).toHaveLength(2);
  });

  it('a file whose columns fit no format is refused, naming the columns found and those expected', async () => {
    const err = await refusal(readDataset(blob(jsonl({ foo: 1, bar: 'x' })), 'odd.jsonl'));
    expect(err.message).toMatch(/odd\.jsonl: no dataset format fits its columns \(foo, bar\)\. Expected one of: instruction \+ output/);
    expect(err.subject).toBe('odd.jsonl');
  });
});

describe('JSON and JSON Lines', () => {
  it('JSONL: malformed lines, non-objects and empty text are rejected by 1-based line; blank lines are not rows', async () => {
    const text = jsonl({ text: 'one' }, '{"text": "two"', '', '42', { text: '   ' }, { text: 'six' });
    const ds = await readDataset(blob(text), 'notes.jsonl');
    expect(ds.format).toBe('text');
    expect(ds.lineKind).toBe('line');
    expect(ds.examples.map((e) => e.line)).toEqual([1, 6]);
    expect(ds.rejected.map((r) => r.where)).toEqual(['line 2', 'line 4', 'line 5']);
    expect(ds.rejected[0].reason).toMatch(/^not valid JSON/);
    expect(ds.rejected[1].reason).toBe('is a number, not a JSON object with named fields');
    expect(ds.rejected[2].reason).toBe('the text (text) is empty');
    expect(ds.totalRows).toBe(5);
  });

  it('JSON with a syntax error is refused with the line of the error', async () => {
    const err = await refusal(readDataset(blob('[{"text": "a"},\n{"text": }]'), 'broken.json'));
    expect(err.message).toMatch(/^broken\.json is not valid JSON at line 2/);
    const tail = await refusal(readDataset(blob('[\n{"text": "a\\q"}\n]'), 'escape.json'));
    expect(tail.message).toMatch(/^escape\.json is not valid JSON at line 2/);
    expect((await refusal(readDataset(blob('[{"text": "a"}]\n\n]'), 'extra.json'))).message).toMatch(/at line 3/);
  });

  it('the JSON error locator finds no error in valid JSON (the shared .json files)', () => {
    for (const rel of ['pubmedqa/ori_pqal.json', 'alpaca/alpaca_tiny.json', 'pubmedqa/test_ground_truth.json']) {
      expect(jsonErrorOffset(readFileSync(path.join(DATASETS, rel), 'utf8'))).toBeNull();
    }
  });

  it('JSON array: non-object elements are rejected by 0-based element index', async () => {
    const ds = await readDataset(blob(JSON.stringify([{ text: 'a' }, 'b', { text: 'c' }])), 'arr.json');
    expect(ds.lineKind).toBe('element');
    expect(ds.examples.map((e) => e.line)).toEqual([0, 2]);
    expect(ds.rejected).toEqual([{ line: 1, where: 'element 1', reason: 'is a string, not an object with named fields' }]);
  });

  it('a JSON object holding one array is read from that array; a .json holding JSON Lines is read as lines', async () => {
    const wrapped = await readDataset(blob(JSON.stringify({ version: 2, data: [{ text: 'a' }, { text: '' }] })), 'wrapped.json');
    expect(wrapped.examples).toHaveLength(1);
    expect(wrapped.rejected[0].where).toBe('element 1 of "data"');
    const lines = await readDataset(blob(jsonl({ text: 'a' }, { text: 'b' })), 'really-lines.json');
    expect(lines.lineKind).toBe('line');
    expect(lines.examples.map((e) => e.line)).toEqual([1, 2]);
  });

  it('an object of records keyed by id keeps the order of the file, even for integer-like keys', async () => {
    const text = '{"30": {"text": "first"}, "4": {"text": "second"}, "x": {"text": ""}}';
    const ds = await readDataset(blob(text), 'keyed.json');
    expect(ds.examples.map((e) => (e.kind === 'text' ? e.target : null))).toEqual(['first', 'second']);
    expect(ds.rejected).toEqual([{ line: 2, where: 'entry "x"', reason: 'the text (text) is empty' }]);
  });

  it('a file with no usable row is refused with the reasons, the columns found and those used', async () => {
    const err = await refusal(readDataset(blob(jsonl({ text: '' }, { text: ' ' })), 'blank.jsonl'));
    expect(err.message).toMatch(/^blank\.jsonl has no usable row for the text format \(columns found: text; used: text=text\): the text \(text\) is empty \(2 rows, first at line 1\)/);
    const none = await refusal(readDataset(blob('{oops\n'), 'bad.jsonl'));
    expect(none.message).toMatch(/^bad\.jsonl has no usable row: not valid JSON/);
  });
});

describe('CSV', () => {
  it('an empty CSV, and a CSV whose columns fit no format, are refused naming the file and columns', async () => {
    expect((await refusal(readDataset(blob(''), 'empty.csv'))).message).toBe('empty.csv is empty: no header row and no data.');
    const err = await refusal(readDataset(blob('id,score\n1,2\n'), 'scores.csv'));
    expect(err.message).toMatch(/^scores\.csv: no dataset format fits its columns \(id, score\)/);
  });

  it('a file without a known extension is recognised from its content', async () => {
    expect((await readDataset(blob(jsonl({ text: 'a' }, { text: 'b' })), 'data.txt')).lineKind).toBe('line');
    expect((await readDataset(blob('sentence,label\nUp,positive\nDown,negative\n'), 'data')).multipleChoiceSchema).toBe('classification');
  });

  it('rows with the wrong number of fields are rejected by the line they start on (quoted newlines counted)', async () => {
    const text = 'sentence,label\nGood times,positive\n"two\nlines",negative\ntoo,many,fields\nonly one\n\nBad,negative\n';
    const ds = await readDataset(blob(text), 'fin.csv');
    expect(ds.format).toBe('multiple-choice');
    expect(ds.multipleChoiceSchema).toBe('classification');
    expect(ds.examples.map((e) => e.line)).toEqual([2, 3, 8]);
    expect(rejectedLines(ds)).toEqual([
      [5, 'has 3 fields, but the header (line 1) has 2 columns (sentence, label)'],
      [6, 'has 1 field, but the header (line 1) has 2 columns (sentence, label)'],
    ]);
  });

  it('an unterminated quote and a missing label are rejected with reasons', async () => {
    const ds = await readDataset(blob('sentence,label\nfine,positive\nno label,\nok,negative\n"open,positive\n'), 'q.csv');
    expect(ds.examples.map((e) => e.line)).toEqual([2, 4]);
    expect(rejectedLines(ds)).toEqual([
      [3, 'the label (label) is missing'],
      [5, 'CSV error: Quoted field unterminated'],
    ]);
  });

  it('the person can set the format and map columns; a mapped column that is not there is refused', async () => {
    const text = 'review,stars,q,a\nLovely,5,Why?,Because\nAwful,1,How?,So\n';
    const mc = await readDataset(blob(text), 'reviews.csv', { format: 'multiple-choice', columns: { text: 'review', answer: 'stars' } });
    expect(mc.multipleChoiceSchema).toBe('classification');
    expect(mc.detectedFrom).toBe('set by you');
    expect(mc.multipleChoice[0]).toMatchObject({ choices: ['1', '5'], gold: 1 });
    const pc = await readDataset(blob(text), 'reviews.csv', { format: 'prompt-completion', columns: { prompt: 'q', completion: 'a' } });
    // Columns without a joining convention get a newline between prompt and answer (the default template "{q}\n{a}").
    expect(pc.template).toBe('{q}\n{a}');
    expect(pc.examples[0]).toMatchObject({ kind: 'text', prompt: 'Why?\n', target: 'Because', line: 2 });
    const arc = jsonl({ query: 'Question: Up?', choices: ['sky', 'sea'], gold: 0 });
    expect((await readDataset(blob(arc), 'arc.jsonl', { format: 'multiple-choice', columns: { answer: 'gold' } })).multipleChoiceSchema).toBe('mosaicml');
    const err = await refusal(readDataset(blob(text), 'reviews.csv', { format: 'text', columns: { text: 'body' } }));
    expect(err.message).toBe('reviews.csv: the text format needs a column for "text", but body is not in the file. Columns found: review, stars, q, a. Map the "text" role to one of the file\'s columns (in the studio: "Format and columns"; on the command line, a --template naming the column), or rename the column.');
  });
});

describe('multiple-choice rows', () => {
  it('missing answers, out-of-range indices and answers that name no choice are rejected with reasons', async () => {
    const opts = 'A. red\nB. green\nC. blue\nD. black';
    const text = jsonl(
      { question: 'Sky?', options: opts, answer: 'C. blue' },
      { question: 'Grass?', options: opts, answer: '' },
      { question: 'Coal?', options: opts, answer: 7 },
      { question: 'Snow?', options: opts, answer: 'E' },
      { question: 'Blood?', options: opts, answer: 'A. green' },
      { question: 'Night?', options: opts, answer: 'purple' },
      { question: '', options: opts, answer: 'A' },
      { question: 'Leaf?', options: opts, answer: 1 },
    );
    const ds = await readDataset(blob(text), 'mc.jsonl');
    expect(ds.multipleChoiceSchema).toBe('question');
    expect(ds.multipleChoice.map((m) => [m.line, m.gold])).toEqual([
      [1, 2],
      [8, 1],
    ]);
    expect(rejectedLines(ds)).toEqual([
      [2, 'the answer (answer) is missing'],
      [3, 'answer index 7 is out of range for 4 choices (indices 0..3)'],
      [4, 'answer E is out of range for 4 choices (A..D)'],
      [5, 'answer "A. green" does not match option A ("red")'],
      [6, 'answer "purple" is not one of the choices'],
      [7, 'the question (question) is empty'],
    ]);
  });

  it('the lm-eval MedMCQA prompt, letter continuations, and " C. text" as the training target', async () => {
    const ds = await readDataset(blob(jsonl({ question: 'Sky?', options: 'A. red\nB. green\nC. blue', answer: 'C. blue' }, { question: 'Sea?', options: 'A. red\nB. green\nC. blue', answer: 'C' })), 'mc.jsonl');
    expect(ds.examples[0]).toMatchObject({ prompt: 'Question: Sky?\nChoices:\nA. red\nB. green\nC. blue\nAnswer:', target: ' C. blue' });
    expect(ds.multipleChoice[0].requests.map((r) => r.continuation)).toEqual([' A', ' B', ' C']);
  });

  it('llm-foundry gold out of range, and HellaSwag without a label, are rejected', async () => {
    const mos = await readDataset(blob(jsonl({ query: 'Q', choices: ['a', 'b'], gold: 5 }, { query: 'Q', choices: ['a', 'b'], gold: 1 })), 'arc.jsonl');
    expect(rejectedLines(mos)).toEqual([[1, 'gold 5 is out of range for 2 choices (indices 0..1)']]);
    const hs = { activity_label: 'Cooking', ctx_a: 'A man cuts onions.', ctx_b: 'he', endings: ['cries.', 'sings.'], label: '' };
    const ds = await readDataset(blob(jsonl(hs, { ...hs, label: 0 })), 'hs.jsonl');
    expect(rejectedLines(ds)).toEqual([[1, 'the label (correct ending) is missing']]);
    expect(ds.multipleChoice[0]).toMatchObject({ context: 'Cooking: A man cuts onions. He', choices: ['cries.', 'sings.'], gold: 0 });
  });

  it('HF ARC layout: choices {text, label} and a numeric answerKey resolve through the labels', async () => {
    const row = { question: 'Which?', choices: { text: ['w', 'x', 'y', 'z'], label: ['1', '2', '3', '4'] }, answerKey: '3' };
    const ds = await readDataset(blob(jsonl(row)), 'arc.jsonl');
    expect(ds.multipleChoice[0]).toMatchObject({ choices: ['w', 'x', 'y', 'z'], gold: 2 });
  });

  it('original WinoGrande layout (sentence with "_", option1/2, answer 1/2) becomes a partial-scoring item', async () => {
    const row = { sentence: 'The trophy did not fit the case because the _ was too big.', option1: 'trophy', option2: 'case', answer: '1' };
    const ds = await readDataset(blob(jsonl(row, { ...row, answer: '3' })), 'wino.jsonl');
    expect(ds.multipleChoice[0]).toMatchObject({
      partial: true,
      gold: 0,
      requests: [
        { context: 'The trophy did not fit the case because the trophy', continuation: ' was too big.' },
        { context: 'The trophy did not fit the case because the case', continuation: ' was too big.' },
      ],
    });
    expect(rejectedLines(ds)).toEqual([[2, 'answer "3" is not 1 or 2']]);
  });
});

describe('chat and token rows', () => {
  it('chat: roles normalised (ShareGPT from/value too); rows without an assistant turn or with unknown roles are rejected', async () => {
    const text = jsonl(
      { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] },
      { messages: [{ role: 'user', content: 'Hi' }] },
      { messages: [{ role: 'wizard', content: 'Hi' }] },
      { messages: 'Hi' },
    );
    const ds = await readDataset(blob(text), 'chat.jsonl');
    expect(ds.examples).toEqual([{ kind: 'chat', line: 1, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }]);
    expect(rejectedLines(ds)).toEqual([
      [2, 'the conversation has no assistant message to train on'],
      [3, 'messages[0] has role "wizard"; expected system, user or assistant'],
      [4, 'messages is not a list of messages'],
    ]);
    const sharegpt = await readDataset(blob(jsonl({ conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Yo' }] })), 'sg.jsonl');
    expect(sharegpt.examples[0]).toMatchObject({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }] });
  });

  it('pre-tokenized: loss_mask or labels with -100; mismatches are rejected', async () => {
    const text = jsonl(
      { input_ids: [1, 5, 6, 7], labels: [-100, -100, 6, 7] },
      { input_ids: [1, 5, 6], labels: [-100, 5] },
      { input_ids: [1, 5, 6], labels: [-100, 9, 6] },
      { input_ids: [1, 'x'] },
      { input_ids: [1, 5, 6] },
    );
    const ds = await readDataset(blob(text), 'tok.jsonl');
    expect(ds.format).toBe('pretokenized');
    expect(ds.examples).toEqual([
      { kind: 'tokens', line: 1, inputIds: [1, 5, 6, 7], lossMask: [0, 0, 1, 1] },
      { kind: 'tokens', line: 5, inputIds: [1, 5, 6], lossMask: null },
    ]);
    expect(rejectedLines(ds)).toEqual([
      [2, 'labels has 2 entries but input_ids has 3'],
      [3, 'labels[1] = 9 is neither -100 nor the input id 5 (only -100 masking is supported)'],
      [4, 'input_ids[1] = "x" is not an integer'],
    ]);
  });
});

describe('Parquet', () => {
  // The file is written by a minimal spec-following writer (no Parquet writer is installed) and read by hyparquet.
  it('reads a Parquet file (strings and int64) into rows by 0-based row index', async () => {
    const bytes = writeParquet([
      { name: 'instruction', type: 'string', values: ['Add the numbers.', 'Name a colour.', 'Say hi.'] },
      { name: 'input', type: 'string', values: ['2, 3', '', ''] },
      { name: 'output', type: 'string', values: ['5', 'Blue', ''] },
      { name: 'id', type: 'int64', values: [10, 11, 2 ** 40] },
    ]);
    const ds = await readDataset(new Blob([bytes as BlobPart]), 'alpaca.parquet');
    expect(ds.format).toBe('instruction');
    expect(ds.lineKind).toBe('row');
    expect(ds.columns).toEqual(['instruction', 'input', 'output', 'id']);
    expect(ds.examples.map((e) => e.line)).toEqual([0, 1]);
    expect(ds.examples[0]).toMatchObject({ target: '5' });
    expect((ds.examples[0] as { prompt: string }).prompt).toContain('### Input:\n2, 3\n\n### Response:\n');
    expect(ds.rejected).toEqual([{ line: 2, where: 'row 2', reason: 'the output (output) is empty' }]);
  });

  it('a column chunk that is not one column of the schema (repeated, or of no column) is refused as damaged', async () => {
    for (const chunkName of ['instruction', 'nowhere']) {
      const bytes = writeParquet([
        { name: 'instruction', type: 'string', values: ['Add the numbers.'] },
        { name: 'output', type: 'string', values: ['5'], chunkName },
      ]);
      const err = await refusal(readDataset(new Blob([bytes as BlobPart]), 'damaged.parquet'));
      expect(err).toBeInstanceOf(GradPruneError);
      expect(err.message).toBe(`damaged.parquet: row group 0 has a column chunk (${chunkName}) that is not one column of the file's schema; the Parquet metadata is damaged. Download or export the file again.`);
    }
  });

  it('a file that is not Parquet inside is refused with the reader\'s reason', async () => {
    const err = await refusal(readDataset(blob('PAR1 this is not parquet at all PAR1'), 'fake.parquet'));
    expect(err.message).toMatch(/^fake\.parquet could not be read as Parquet/);
  });
});
