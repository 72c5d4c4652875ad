// tokenizer.json + tokenizer_config.json → llama.cpp's tokenizer.ggml.* metadata. Two kinds of BPE are expressible:
//
// - SentencePiece-style BPE with byte fallback (Llama-2, Mistral, the fixtures): tokenizer.ggml.model "llama". llama.cpp
//   merges the adjacent pair whose merged token scores highest, so each token's score is minus the rank of the first
//   merge that makes it (Hugging Face merges the lowest rank first: the same order); tokens no merge makes score below
//   every merge. <0xNN> tokens are BYTE, the unknown token UNKNOWN.
// - Byte-level BPE (Llama-3, Qwen2/3, GPT-2): tokenizer.ggml.model "gpt2" with the merges and the pre-tokenizer named
//   by its split pattern (llama.cpp knows each by name, not by regex).
//
// Anything else (Unigram, WordPiece, an unknown split pattern) is refused with the reason.

import { GradPruneError } from '../../errors';
import { isJsonObject } from '../../model/json';
import type { TextTokenizer } from '../../model/tokenizer';
import type { Metadata } from './format';

/** llama_token_type */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Byte-level pre-tokenizer split patterns → llama.cpp's pre-tokenizer name (tokenizer.ggml.pre). */
const PRE_TOKENIZERS: ReadonlyMap<string, string> = new Map([
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
]);

type Json = Record<string, unknown>;

const refuse = (what: string, hint: string) => new GradPruneError('tokenizer', `tokenizer.json: ${what}, which GGUF cannot express.`, { subject: 'tokenizer.json', hint });

/** The pieces of a pre-tokenizer (a Sequence flattened). */
function preTokenizerParts(pre: unknown): Json[] {
  if (!isJsonObject(pre)) return [];
  if (pre.type === 'Sequence' && Array.isArray(pre.pretokenizers)) return pre.pretokenizers.filter(isJsonObject);
  return [pre];
}

/** "gpt2" + pre name, or "llama"; refuses what llama.cpp has no tokenizer for. */
export function tokenizerKind(tokenizerJson: Json): { model: 'llama' } | { model: 'gpt2'; pre: string } {
  const model = tokenizerJson.model;
  if (!isJsonObject(model) || model.type !== 'BPE') {
    const type = isJsonObject(model) ? String(model.type) : 'missing';
    throw refuse(`the tokenizer model is ${type}, not BPE`, 'GGUF export takes BPE tokenizers: SentencePiece-style with byte fallback (Llama-2, Mistral) or byte-level (Llama-3, Qwen).');
  }
  if (model.byte_fallback === true) return { model: 'llama' };
  const parts = preTokenizerParts(tokenizerJson.pre_tokenizer);
  const byteLevel = parts.find((p) => p.type === 'ByteLevel');
  if (!byteLevel) {
    throw refuse('a BPE tokenizer with neither byte fallback nor a ByteLevel pre-tokenizer', 'GGUF export takes SentencePiece-style BPE (byte_fallback) or byte-level BPE tokenizers.');
  }
  const split = parts.find((p) => p.type === 'Split');
  if (!split && byteLevel.use_regex !== false) return { model: 'gpt2', pre: 'gpt-2' };
  const pattern = split && isJsonObject(split.pattern) ? split.pattern.Regex : undefined;
  const pre = typeof pattern === 'string' ? PRE_TOKENIZERS.get(pattern) : undefined;
  if (!pre) {
    throw refuse(
      `the byte-level pre-tokenizer splits by ${typeof pattern === 'string' ? `the pattern ${JSON.stringify(pattern.slice(0, 80))}` : 'a rule'} that llama.cpp has no named pre-tokenizer for`,
      `llama.cpp knows its pre-tokenizers by name; this export recognises ${[...PRE_TOKENIZERS.values(), 'gpt-2'].join(', ')}.`,
    );
  }
  return { model: 'gpt2', pre };
}

const mergePair = (m: unknown): [string, string] | null => {
  if (typeof m === 'string') {
    const at = m.indexOf(' ', 1);
    return at > 0 ? [m.slice(0, at), m.slice(at + 1)] : null;
  }
  return Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string' ? [m[0], m[1]] : null;
};

/** Whether the SentencePiece-style tokenizer puts "▁" before the text (Prepend normalizer or Metaspace prefix). */
function addsSpacePrefix(tokenizerJson: Json): boolean {
  const normalizers = isJsonObject(tokenizerJson.normalizer)
    ? tokenizerJson.normalizer.type === 'Sequence' && Array.isArray(tokenizerJson.normalizer.normalizers)
      ? tokenizerJson.normalizer.normalizers.filter(isJsonObject)
      : [tokenizerJson.normalizer]
    : [];
  if (normalizers.some((n) => n.type === 'Prepend')) return true;
  const meta = preTokenizerParts(tokenizerJson.pre_tokenizer).find((p) => p.type === 'Metaspace');
  return !!meta && meta.prepend_scheme !== 'never' && meta.add_prefix_space !== false;
}

/** The tokenizer.ggml.* entries for a vocabulary of `vocabSize` rows (the embedding's; unused ids are padded). */
export function tokenizerMetadata(tokenizerJson: Json, tokenizerConfig: Json, tokenizer: TextTokenizer, vocabSize: number): Metadata {
  const kind = tokenizerKind(tokenizerJson);
  const model = tokenizerJson.model as Json;
  const vocab = isJsonObject(model.vocab) ? (model.vocab as Record<string, number>) : {};
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TokenType.NORMAL);
  for (const [text, id] of Object.entries(vocab)) if (Number.isInteger(id) && id >= 0 && id < vocabSize) tokens[id] = text;
  const added = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens.filter(isJsonObject) : [];
  for (const t of added) {
    if (typeof t.id !== 'number' || typeof t.content !== 'string' || t.id < 0 || t.id >= vocabSize) continue;
    tokens[t.id] = t.content;
    types[t.id] = t.special === true ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const merges = (Array.isArray(model.merges) ? model.merges : []).map(mergePair);
  if (merges.some((m) => m === null)) throw refuse('a merge that is not a pair of tokens', 'Use the tokenizer.json of the original checkpoint.');
  const pairs = merges as [string, string][];

  const unk = typeof model.unk_token === 'string' ? vocab[model.unk_token] : undefined;
  const md: Metadata = new Map();
  md.set('tokenizer.ggml.model', { type: 'string', value: kind.model });
  if (kind.model === 'gpt2') md.set('tokenizer.ggml.pre', { type: 'string', value: kind.pre });
  const padded = Array.from(tokens, (t, i) => {
    if (t !== undefined) return t;
    types[i] = TokenType.UNUSED;
    return `[PAD${i}]`;
  });
  md.set('tokenizer.ggml.tokens', { type: 'string[]', value: padded });
  if (kind.model === 'llama') {
    const scores = new Float32Array(vocabSize).fill(-pairs.length);
    const scored = new Set<string>();
    pairs.forEach(([a, b], rank) => {
      const merged = a + b;
      const id = vocab[merged];
      if (id !== undefined && !scored.has(merged)) {
        scored.add(merged);
        scores[id] = -rank;
      }
    });
    padded.forEach((t, i) => {
      if (/^<0x[0-9A-Fa-f]{2}>$/.test(t) && types[i] === TokenType.NORMAL) types[i] = TokenType.BYTE;
    });
    if (unk !== undefined) types[unk] = TokenType.UNKNOWN;
    md.set('tokenizer.ggml.scores', { type: 'f32[]', value: scores });
  }
  md.set('tokenizer.ggml.token_type', { type: 'i32[]', value: types });
  if (kind.model === 'gpt2') md.set('tokenizer.ggml.merges', { type: 'string[]', value: pairs.map(([a, b]) => `${a} ${b}`) });

  const special: [string, number | null | undefined][] = [
    ['bos', tokenizer.bosTokenId],
    ['eos', tokenizer.eosTokenId],
    ['unknown', unk],
    ['padding', tokenizer.padTokenId],
  ];
  for (const [name, id] of special) if (id != null) md.set(`tokenizer.ggml.${name}_token_id`, { type: 'u32', value: id });
  // What Hugging Face's encode adds (the post-processor decides, whatever tokenizer_config.json says).
  const withSpecial = tokenizer.encode('a', { addSpecialTokens: true });
  const plain = tokenizer.encode('a', { addSpecialTokens: false });
  const addsBos = withSpecial.length > plain.length && tokenizer.bosTokenId !== null && withSpecial[0] === tokenizer.bosTokenId;
  const addsEos = withSpecial.length > plain.length && tokenizer.eosTokenId !== null && withSpecial[withSpecial.length - 1] === tokenizer.eosTokenId;
  md.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: addsBos });
  md.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: addsEos });
  if (kind.model === 'llama') md.set('tokenizer.ggml.add_space_prefix', { type: 'bool', value: addsSpacePrefix(tokenizerJson) });

  const template = tokenizerConfig.chat_template;
  if (typeof template === 'string') md.set('tokenizer.chat_template', { type: 'string', value: template });
  else if (Array.isArray(template)) {
    for (const t of template.filter(isJsonObject)) {
      if (typeof t.name !== 'string' || typeof t.template !== 'string') continue;
      md.set(t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`, { type: 'string', value: t.template });
    }
  }
  return md;
}
