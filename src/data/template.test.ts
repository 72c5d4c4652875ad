// Prompt templates, rejection reasons, the EOS setting and the encoding checks, against strings and ids written by
// hand here (the classification prompt as lm-evaluation-harness-style text, the Alpaca prompt of stanford_alpaca).
import { beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { openFolder } from '../model/node-files';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer';
import { fixtureDir } from '../testing/paths';
import { buildExamples, readDataset } from './index';
import { escapeTemplate, parseTemplate, unescapeTemplate } from './template';

const blob = (s: string | Uint8Array) => new Blob([s as BlobPart]);
const refusal = async (p: Promise<unknown>) => {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(GradPruneError);
  return e as GradPruneError;
};

let llama: TextTokenizer; // tiny-llama: BOS 1, EOS 2
beforeAll(async () => {
  llama = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
});

describe('prompt templates', () => {
  it('the last placeholder is the target; the text before it is the separator', () => {
    const t = parseTemplate('Q: {question}\nA: {answer}.', ['question', 'answer']);
    expect(t).toMatchObject({ target: 'answer', separator: '\nA: ', after: '.', columns: ['question', 'answer'] });
    expect(parseTemplate('{{x}} {a}{b}', ['a', 'b'])).toMatchObject({ target: 'b', separator: '', prompt: [{ text: '{x} ' }, { column: 'a' }] });
    expect(unescapeTemplate(escapeTemplate('a\n\tb\\n'))).toBe('a\n\tb\\n');
    expect(unescapeTemplate('{question}\\n{answer}')).toBe('{question}\n{answer}');
  });

  it('a template naming a missing column, never closing a brace, or without a placeholder is refused with what to write', () => {
    expect(() => parseTemplate('{question}\n{reply}', ['question', 'answer'])).toThrow(/names \{reply\}, which is not a column of the file/);
    expect(() => parseTemplate('{question', ['question'])).toThrow(/never closed/);
    expect(() => parseTemplate('just text', ['question'])).toThrow(/has no \{column\} placeholder/);
  });

  it('a question/answer CSV is joined with a newline by default (was "…?It is said, …"); the template is editable', async () => {
    const csv = 'question,answer\nWhat is said of item 0?,"It is said, well."\n';
    const ds = await readDataset(blob(csv), 'qa.csv');
    expect(ds.format).toBe('prompt-completion');
    expect(ds.template).toBe('{question}\n{answer}');
    expect(ds.templateIsDefault).toBe(true);
    expect(ds.examples[0]).toMatchObject({ prompt: 'What is said of item 0?\n', target: 'It is said, well.' });
    const own = await readDataset(blob(csv), 'qa.csv', { template: 'Q: {question}\nA: {answer}' });
    expect(own.templateIsDefault).toBe(false);
    expect(own.examples[0]).toMatchObject({ prompt: 'Q: What is said of item 0?\nA: ', target: 'It is said, well.' });
  });

  it('prompt/completion keeps its own join (the separator lives in the data, as llm-foundry writes " yes")', async () => {
    const ds = await readDataset(blob('{"prompt": "Answer:", "completion": " yes"}\n'), 'p.jsonl');
    expect(ds.template).toBe('{prompt}{completion}');
    expect(ds.examples[0]).toMatchObject({ prompt: 'Answer:', target: ' yes' });
  });

  it('a template maps the columns of a file no format fits (read as prompt + completion)', async () => {
    const ds = await readDataset(blob('{"q": "2+2?", "a": "4"}\n'), 'odd.jsonl', { template: '{q} = {a}' });
    expect(ds.format).toBe('prompt-completion');
    expect(ds.mapping).toMatchObject({ prompt: 'q', completion: 'a' });
    expect(ds.examples[0]).toMatchObject({ prompt: '2+2? = ', target: '4' });
  });

  it('a template for chat data is refused: its layout is the chat_template', async () => {
    const chat = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n';
    expect((await refusal(readDataset(blob(chat), 'c.jsonl', { template: '{messages}' }))).message).toMatch(/chat format takes no prompt template.*tokenizer_config\.json/);
  });

  it("sentence,label: the fixed question prompt is the default template, and the person's template replaces it", async () => {
    const csv = 'sentence,label\nProfits rose.,positive\nSales fell.,negative\nFlat year.,neutral\n';
    const ds = await readDataset(blob(csv), 'fin.csv');
    expect(ds.template).toBe('Sentence: {sentence}\nQuestion: What is the sentiment of this sentence: {choices}?\nAnswer: {label}');
    expect(ds.multipleChoice[0]).toMatchObject({
      context: 'Sentence: Profits rose.\nQuestion: What is the sentiment of this sentence: negative, neutral or positive?\nAnswer:',
      choices: ['negative', 'neutral', 'positive'],
      gold: 2,
    });
    expect(ds.multipleChoice[0].requests.map((r) => r.continuation)).toEqual([' negative', ' neutral', ' positive']);
    const own = await readDataset(blob(csv), 'fin.csv', { template: 'News: {sentence}\nMood ({choices}): {label}' });
    expect(own.multipleChoice[1]).toMatchObject({ context: 'News: Sales fell.\nMood (negative, neutral or positive):', gold: 0 });
    expect(own.examples[1]).toMatchObject({ prompt: 'News: Sales fell.\nMood (negative, neutral or positive):', target: ' negative' });
  });
});

describe('rejection reasons', () => {
  it('a row with an empty question is rejected by its line, with why', async () => {
    const ds = await readDataset(blob('question,answer\nWhy?,Because\n,Paris\n   ,Rome\n'), 'qa.csv');
    expect(ds.examples.map((e) => e.line)).toEqual([2]);
    expect(ds.rejected).toEqual([
      { line: 3, where: 'line 3', reason: 'the prompt (question) is empty' },
      { line: 4, where: 'line 4', reason: 'the prompt (question) is empty' },
    ]);
  });

  it('instruction: 123 is the text "123"; a missing output is "missing", an empty one "empty"', async () => {
    const rows = ['{"instruction": 123, "output": 456}', '{"instruction": 123, "output": null}', '{"instruction": 123, "output": " "}', '{"instruction": {"a": 1}, "output": "x"}'];
    const ds = await readDataset(blob(rows.join('\n')), 'i.jsonl');
    expect(ds.examples[0]).toMatchObject({ target: '456' });
    expect((ds.examples[0] as { prompt: string }).prompt).toContain('### Instruction:\n123\n\n### Response:\n');
    expect(ds.rejected.map((r) => [r.line, r.reason])).toEqual([
      [2, 'the output (output) is missing'],
      [3, 'the output (output) is empty'],
      [4, 'the instruction (instruction) is an object, not text'],
    ]);
  });
});

describe('the EOS setting', () => {
  it('on for answers, off for classification labels; the targets differ exactly by the EOS id', async () => {
    const qa = 'question,answer\nWhy?,Because\n';
    const fin = 'sentence,label\nProfits rose.,positive\nSales fell.,negative\n';
    expect((await readDataset(blob(qa), 'qa.csv')).appendEos).toBe(true);
    expect((await readDataset(blob(fin), 'fin.csv')).appendEos).toBe(false);
    for (const [text, name] of [[qa, 'qa.csv'], [fin, 'fin.csv']]) {
      const on = buildExamples(await readDataset(blob(text), name, { appendEos: true }), llama, { maxSeqLen: 512 });
      const off = buildExamples(await readDataset(blob(text), name, { appendEos: false }), llama, { maxSeqLen: 512 });
      expect([on.appendEos, off.appendEos]).toEqual([true, false]);
      on.examples.forEach((e, i) => {
        expect(e.inputIds).toEqual([...off.examples[i].inputIds, 2]); // tiny-llama's </s>
        expect(e.lossMask).toEqual([...off.examples[i].lossMask, 1]);
      });
    }
  });
});

describe('encodings and binary files, before parsing', () => {
  const utf32 = (s: string, be = false) => new Uint8Array([...s].flatMap((c) => (be ? [0, 0, 0, c.charCodeAt(0)] : [c.charCodeAt(0), 0, 0, 0])));
  it('UTF-32 (with or without a BOM), a safetensors file and a NUL byte are refused naming the file and what to do', async () => {
    const text = '{"text": "a"}\n{"text": "b"}\n';
    const bom = new Uint8Array([0xff, 0xfe, 0, 0, ...utf32(text)]);
    for (const bytes of [bom, utf32(text), utf32(text, true)]) {
      const e = await refusal(readDataset(blob(bytes), 'train.jsonl'));
      expect(e.message).toMatch(/^train\.jsonl is not a text dataset: it is UTF-32 text\./);
      expect(e.hint).toMatch(/Save it as UTF-8/);
    }
    const header = '{"__metadata__":{"a":"b"}}';
    const st = new Uint8Array([header.length, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(header), 0, 0, 0, 0]);
    expect((await refusal(readDataset(blob(st), 'model.safetensors'))).message).toMatch(/^model\.safetensors is not a text dataset: it is a safetensors file \(model weights\)\./);
    expect((await refusal(readDataset(blob('{"text": "a\u0000"}\n'), 't.jsonl'))).message).toMatch(/^t\.jsonl is not a text dataset: it is binary data \(a NUL byte at byte 11\)/);
  });

  it('a file no format fits gets a hint that names controls that exist (the template; no column-mapping flag)', async () => {
    const e = await refusal(readDataset(blob('{"foo": 1, "bar": 2}\n'), 'x.jsonl'));
    expect(e.hint).toMatch(/--template/);
    expect(e.hint).not.toMatch(/map its columns by hand/);
  });
});

describe('a chat template that never ends', () => {
  it('is stopped within its budget and refused naming tokenizer_config.json (not a hang)', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    const config = JSON.parse(await files.get('tokenizer_config.json')!.text());
    const withTemplate = (chat_template: string) => new Map([...files, ['tokenizer_config.json', new Blob([JSON.stringify({ ...config, chat_template })])]]);
    const chat = await readDataset(blob('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n'), 'c.jsonl');
    for (const hostile of ['{% for i in range(1000000000) %}x{% endfor %}', '{% set r = range(100) %}{% for a in r %}{% for b in r %}{% for c in r %}x{% endfor %}{% endfor %}{% endfor %}']) {
      const tok = await loadTokenizer(withTemplate(hostile));
      const started = performance.now();
      const e = (() => {
        try {
          buildExamples(chat, tok, { maxSeqLen: 64 });
        } catch (err) {
          return err as GradPruneError;
        }
        throw new Error('expected a refusal');
      })();
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(e).toBeInstanceOf(GradPruneError);
      expect(e.message).toMatch(/^tokenizer_config\.json: the chat_template (loops more than 100000 times|ran for more than 2 s) over one conversation|^tokenizer_config\.json: the chat_template/);
    }
    // A template that loops within reason renders as before (the counting leaves the output unchanged).
    const fine = await loadTokenizer(withTemplate('{%- for m in messages -%}\n  [{{ loop.index }}:{{ m.content }}]\n{%- endfor %}\nend'));
    expect(fine.applyChatTemplate!([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }])).toBe('[1:Hi][2:Yo]end');
  });
});
