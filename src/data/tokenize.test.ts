// Tokenized examples against tokenizer.encode of strings assembled by hand in this file.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openFile, openFolder } from '../model/node-files';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer';
import { DATASETS, DEMO, fixtureDir } from '../testing/paths';
import { buildExamples, readDataset, SegmentEncoder, tokenizePair, type Dataset } from './index';

let llama: TextTokenizer; // tiny-llama: BOS 1, EOS 2, no chat template
let llama2: TextTokenizer; // tiny-random-llama-2: the real Llama-2 tokenizer and chat template
let demo: TextTokenizer; // public/demo: a byte-level BPE tokenizer (GPT-2 / Llama-3 / Qwen2 style)

beforeAll(async () => {
  llama = await loadTokenizer(await openFolder(fixtureDir('tiny-llama')));
  llama2 = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
  demo = await loadTokenizer(await openFolder(DEMO));
});

const shared = async (rel: string) => readDataset(await openFile(path.join(DATASETS, rel)), path.basename(rel));
const rows = async (name: string, ...values: unknown[]) => readDataset(new Blob([values.map((v) => JSON.stringify(v)).join('\n')]), name);
const enc = (tok: TextTokenizer, s: string, special = true) => tok.encode(s, { addSpecialTokens: special });
const maskOf = (n: number, ones: [number, number][]) => Array.from({ length: n }, (_, t) => (ones.some(([a, b]) => t >= a && t < b) ? 1 : 0));
const only = (ds: Dataset, line: number): Dataset => ({ ...ds, examples: ds.examples.filter((e) => e.line === line), rejected: [] });

describe.each([
  ['tiny-llama', () => llama],
  ['tiny-random-llama-2', () => llama2],
  ['demo (byte-level BPE)', () => demo],
])('%s', (_name, tokenizer) => {
  it('Alpaca (with input): ids = encode(hand-written Alpaca prompt + output) + EOS, loss on the output + EOS', async () => {
    const tok = tokenizer();
    const ds = await shared('alpaca/alpaca_5000_pr152.json');
    const set = buildExamples(only(ds, 0), tok, { maxSeqLen: 1024 });
    const prompt =
      'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n' +
      '### Instruction:\nAre the two sentences below grammatically correct? Output yes or no.\n\n' +
      '### Input:\nSentence 1: I am going to the store.\nSentence 2: I goes to the store.\n\n### Response:\n';
    const expected = [...enc(tok, `${prompt}No`), tok.eosTokenId!];
    const p = enc(tok, prompt).length;
    expect(set.examples[0].inputIds).toEqual(expected);
    expect(set.examples[0].lossMask).toEqual(maskOf(expected.length, [[p, expected.length]]));
    expect(set.examples[0].promptLength).toBe(p);
    expect(expected[0]).toBe(tok.bosTokenId);
  });

  it('ARC: "Question: …\\nAnswer:" + " choice" + EOS', async () => {
    const tok = tokenizer();
    const ds = await shared('arc/arc_easy.jsonl');
    const set = buildExamples(only(ds, 1), tok, { maxSeqLen: 512 });
    const prompt = 'Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:';
    const expected = [...enc(tok, `${prompt} Sunlight is the source of energy for nearly all ecosystems.`), tok.eosTokenId!];
    const p = enc(tok, prompt).length;
    expect(set.examples[0].inputIds).toEqual(expected);
    expect(set.examples[0].lossMask).toEqual(maskOf(expected.length, [[p, expected.length]]));
  });

  it('a prompt ending in a space ("Answer: " + "yes") tokenizes as "Answer:" + " yes"', async () => {
    const tok = tokenizer();
    const ds = await rows('pc.jsonl', { context: 'Question: Is water wet?\nAnswer: ', continuation: 'yes' });
    const set = buildExamples(ds, tok, { maxSeqLen: 64 });
    const expected = [...enc(tok, 'Question: Is water wet?\nAnswer: yes'), tok.eosTokenId!];
    const p = enc(tok, 'Question: Is water wet?\nAnswer:').length;
    expect(set.examples[0].inputIds).toEqual(expected);
    expect(set.examples[0].lossMask).toEqual(maskOf(expected.length, [[p, expected.length]]));
  });

  it('plain text: encode(text) + EOS, loss on every token but the first', async () => {
    const tok = tokenizer();
    const text = 'Once upon a time there was a little dog.';
    const set = buildExamples(await rows('t.jsonl', { text }), tok, { maxSeqLen: 64 });
    const expected = [...enc(tok, text), tok.eosTokenId!];
    expect(set.examples[0].inputIds).toEqual(expected);
    expect(set.examples[0].lossMask).toEqual(maskOf(expected.length, [[1, expected.length]]));
  });

  it("loss 'all' trains every position but the first; appendEos false leaves EOS out", async () => {
    const tok = tokenizer();
    const ds = await rows('pc.jsonl', { prompt: 'Two plus two is', completion: ' four' });
    const all = buildExamples(ds, tok, { maxSeqLen: 64, loss: 'all', appendEos: false });
    const expected = enc(tok, 'Two plus two is four');
    expect(all.examples[0].inputIds).toEqual(expected);
    expect(all.examples[0].lossMask).toEqual(maskOf(expected.length, [[1, expected.length]]));
    expect(all.stats.targetTokens).toBe(expected.length - 1);
  });

  it('multiple-choice requests: every choice shares the context ids; continuation ids as in encode(context + choice)', async () => {
    const tok = tokenizer();
    const ds = await shared('arc/arc_challenge.jsonl');
    const mc = ds.multipleChoice[0];
    const encoder = new SegmentEncoder(tok);
    const contextIds = enc(tok, mc.context);
    for (const r of mc.requests) {
      const pair = tokenizePair(encoder, r.context, r.continuation);
      expect(pair.inputIds).toEqual(enc(tok, r.context + r.continuation));
      expect(pair.promptLength).toBe(contextIds.length);
      expect(pair.inputIds.slice(0, pair.promptLength)).toEqual(contextIds);
    }
  });
});

describe('chat', () => {
  const conversation = [
    { role: 'system', content: 'Be nice.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello there' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: 'Bye now' },
  ];

  it("with the tokenizer's chat_template (Llama-2): ids of the hand-written Llama-2 prompt, loss on the assistant turns", async () => {
    const set = buildExamples(await rows('chat.jsonl', { messages: conversation }), llama2, { maxSeqLen: 128 });
    const turn1 = '<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST]';
    const answer1 = `${turn1} Hello there </s>`;
    const turn2 = `${answer1}<s>[INST] Bye [/INST]`;
    const all = `${turn2} Bye now </s>`;
    const expected = enc(llama2, all, false);
    const len = (s: string) => enc(llama2, s, false).length;
    expect(set.examples[0].inputIds).toEqual(expected);
    expect(set.examples[0].lossMask).toEqual(
      maskOf(expected.length, [
        [len(turn1), len(answer1)],
        [len(turn2), expected.length],
      ]),
    );
    expect(expected.filter((id) => id === llama2.bosTokenId)).toHaveLength(2); // no doubled BOS
  });

  it('without a chat_template: the plain "User: …\\nAssistant: …</s>" layout, loss on each answer and its EOS', async () => {
    const set = buildExamples(await rows('chat.jsonl', { messages: conversation }), llama, { maxSeqLen: 128 });
    const e = set.examples[0];
    const first = enc(llama, 'System: Be nice.\nUser: Hi\nAssistant: Hello there');
    expect(e.inputIds.slice(0, first.length)).toEqual(first);
    expect(e.inputIds[first.length]).toBe(llama.eosTokenId);
    expect(llama.decode(e.inputIds, { skipSpecialTokens: false })).toBe('<s> System: Be nice.\nUser: Hi\nAssistant: Hello there</s>\nUser: Bye\nAssistant: Bye now</s>');
    const trained = e.inputIds.filter((_, t) => e.lossMask[t] === 1);
    expect(llama.decode(trained, { skipSpecialTokens: false })).toBe('Hello there</s> Bye now</s>');
    expect(e.promptLength).toBe(enc(llama, 'System: Be nice.\nUser: Hi\nAssistant:').length);
  });

  it('a template that refuses the conversation rejects the row with its message', async () => {
    const set = buildExamples(await rows('chat.jsonl', { messages: [{ role: 'assistant', content: 'Hi' }, { role: 'assistant', content: 'Again' }] }), llama2, { maxSeqLen: 64 });
    expect(set.examples).toHaveLength(0);
    expect(set.rejected[0].reason).toMatch(/^the chat template failed on this conversation \(.*alternate/);
  });
});

describe('truncation', () => {
  it('cuts the prompt from the left (BOS kept) so the whole target fits, and counts it', async () => {
    const ds = await rows('pc.jsonl', { prompt: 'The story begins in a small town where a girl named Lily lived with her dog.', completion: ' The end.' });
    const full = [...enc(llama, 'The story begins in a small town where a girl named Lily lived with her dog. The end.'), llama.eosTokenId!];
    const p = enc(llama, 'The story begins in a small town where a girl named Lily lived with her dog.').length;
    const targetLen = full.length - p;
    const maxSeqLen = targetLen + 8;
    const set = buildExamples(ds, llama, { maxSeqLen });
    const e = set.examples[0];
    expect(e.inputIds).toEqual([llama.bosTokenId, ...full.slice(p - 7, p), ...full.slice(p)]);
    expect(e.lossMask).toEqual(maskOf(maxSeqLen, [[8, maxSeqLen]]));
    expect(e.truncated).toBe(true);
    expect(set.stats).toMatchObject({ truncatedPrompt: 1, truncatedTarget: 0 });
  });

  it('cuts text rows on the right; a chat whose answer falls past maxSeqLen is rejected, not dropped silently', async () => {
    const text = 'One two three four five six seven eight nine ten eleven twelve.';
    const set = buildExamples(await rows('t.jsonl', { text }), llama, { maxSeqLen: 6 });
    expect(set.examples[0].inputIds).toEqual(enc(llama, text).slice(0, 6));
    expect(set.stats).toMatchObject({ truncatedPrompt: 0, truncatedTarget: 1 });
    const progress: [number, number][] = [];
    buildExamples(await rows('t.jsonl', { text }, { text }), llama, { maxSeqLen: 6, onProgress: (done, total) => progress.push([done, total]) });
    expect(progress).toEqual([
      [0, 2],
      [2, 2],
    ]);
    const chat = { messages: [{ role: 'user', content: text }, { role: 'assistant', content: 'Yes.' }] };
    const cut = buildExamples(await rows('c.jsonl', chat), llama, { maxSeqLen: 6 });
    expect(cut.examples).toHaveLength(0);
    expect(cut.rejected).toEqual([{ line: 1, where: 'line 1', reason: 'no target token is left after truncation to 6 tokens' }]);
  });
});

describe('pre-tokenized rows', () => {
  it('pass through (position 0 never trained); ids outside the vocabulary are rejected', async () => {
    const ds = await rows('tok.jsonl', { input_ids: [1, 300, 301, 302], loss_mask: [1, 0, 1, 1] }, { input_ids: [1, 5, 6] }, { input_ids: [1, 512, 3] });
    const set = buildExamples(ds, llama, { maxSeqLen: 16 });
    expect(set.examples.map((e) => [e.inputIds, e.lossMask])).toEqual([
      [
        [1, 300, 301, 302],
        [0, 0, 1, 1],
      ],
      [
        [1, 5, 6],
        [0, 1, 1],
      ],
    ]);
    expect(set.rejected).toEqual([{ line: 3, where: 'line 3', reason: "token id 512 at position 1 is outside the tokenizer's vocabulary (512 ids)" }]);
    // tiny-random-llama-2's tokenizer_config sets pad_token "<unk>", id 0 in its vocabulary.
    expect(buildExamples(ds, llama2, { maxSeqLen: 16 }).padTokenId).toBe(0);
  });
});
