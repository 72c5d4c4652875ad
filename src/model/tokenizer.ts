// The model's tokenizer, built offline from the dropped tokenizer.json + tokenizer_config.json through
// @huggingface/transformers (the same code in the browser worker and in Node; nothing is fetched).

import { PreTrainedTokenizer, env } from '@huggingface/transformers';
import { GradPruneError } from '../errors';
import { describeJsonType, isJsonObject, readJsonBlob } from './json';

env.allowRemoteModels = false;

export interface ChatMessage {
  role: string;
  content: string;
}

export interface TextTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** Token ids the model begins / ends sequences with, when the tokenizer has them. */
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  vocabSize: number;
  /** The chat template applied to messages, or null when the tokenizer has no `chat_template`. */
  applyChatTemplate: ((messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }) => string) | null;
}

async function readJson(files: ReadonlyMap<string, Blob>, name: string): Promise<Record<string, unknown>> {
  const blob = files.get(name);
  if (!blob) {
    throw new GradPruneError('tokenizer', `${name} is missing.`, {
      subject: name,
      hint: 'Drop the whole model folder: the tokenizer needs tokenizer.json and tokenizer_config.json.',
    });
  }
  // The largest published tokenizer.json files are tens of MB (Gemma's 34 MB).
  const json = await readJsonBlob(blob, name, 'tokenizer', { maxBytes: 256 * 2 ** 20, hint: 'Use the tokenizer files of the original checkpoint.' });
  if (!isJsonObject(json)) throw new GradPruneError('tokenizer', `${name} holds ${describeJsonType(json)}, not a JSON object.`, { subject: name });
  return json;
}

const SPECIAL_TOKENS = ['bos_token', 'eos_token', 'pad_token', 'unk_token', 'sep_token', 'cls_token', 'mask_token'] as const;

/** The fields of tokenizer_config.json the tokenizer reads, checked so that a bad one is named in its own file. */
function checkTokenizerConfig(config: Record<string, unknown>): void {
  const bad = (what: string) =>
    new GradPruneError('tokenizer', `tokenizer_config.json: ${what}.`, { subject: 'tokenizer_config.json', hint: 'Use the tokenizer_config.json of the original checkpoint.' });
  const template = config.chat_template;
  if (template != null && typeof template !== 'string') {
    const named = Array.isArray(template) && template.every((t) => isJsonObject(t) && typeof t.name === 'string' && typeof t.template === 'string');
    if (!named) throw bad(`"chat_template" is ${describeJsonType(template)}; it must be a Jinja template string or a list of { name, template }`);
  }
  for (const key of SPECIAL_TOKENS) {
    const v = config[key];
    if (v != null && typeof v !== 'string' && !(isJsonObject(v) && typeof v.content === 'string')) {
      throw bad(`"${key}" is ${describeJsonType(v)}; it must be a token string or { "content": … }`);
    }
  }
  if (config.added_tokens_decoder != null && !isJsonObject(config.added_tokens_decoder)) {
    throw bad(`"added_tokens_decoder" is ${describeJsonType(config.added_tokens_decoder)}, not an object of id → token`);
  }
}

export async function loadTokenizer(files: ReadonlyMap<string, Blob>): Promise<TextTokenizer> {
  const tokenizerJson = await readJson(files, 'tokenizer.json');
  const tokenizerConfig = await readJson(files, 'tokenizer_config.json');
  checkTokenizerConfig(tokenizerConfig);
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    // Which file is at fault: when tokenizer.json builds without the config, the config is.
    const file = buildsAlone(tokenizerJson) ? 'tokenizer_config.json' : 'tokenizer.json';
    throw new GradPruneError('tokenizer', `${file} could not be read as a tokenizer (${(e as Error).message}).`, {
      subject: file,
      hint: 'Use the tokenizer files of the original checkpoint.',
      cause: e,
    });
  }
  let vocab: Map<string, number>;
  try {
    vocab = tok.get_vocab() as Map<string, number>;
    tok.encode('a\n a', { add_special_tokens: true }); // a tokenizer that builds but cannot encode fails here, by name
  } catch (e) {
    throw new GradPruneError('tokenizer', `tokenizer.json builds a tokenizer that cannot encode text (${(e as Error).message}).`, {
      subject: 'tokenizer.json',
      hint: 'Use the tokenizer files of the original checkpoint.',
      cause: e,
    });
  }
  const idOf = (id: number | undefined): number | null => (typeof id === 'number' && id >= 0 ? id : null);
  const hasTemplate = typeof tokenizerConfig.chat_template === 'string' || Array.isArray(tokenizerConfig.chat_template);
  return {
    encode: (text, opts) => tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }),
    // transformers.js refuses an empty list ("token_ids must be a non-empty array"); nothing decodes to ''.
    decode: (ids, opts) => (ids.length === 0 ? '' : tok.decode([...ids], { skip_special_tokens: opts?.skipSpecialTokens ?? true })),
    bosTokenId: idOf(tok.bos_token_id),
    eosTokenId: idOf(tok.eos_token_id),
    padTokenId: idOf(tok.pad_token_id),
    vocabSize: vocab.size,
    applyChatTemplate: hasTemplate
      ? (messages, opts) =>
          tok.apply_chat_template(messages as never, { tokenize: false, add_generation_prompt: opts?.addGenerationPrompt ?? false }) as string
      : null,
  };
}

function buildsAlone(tokenizerJson: Record<string, unknown>): boolean {
  try {
    new PreTrainedTokenizer(tokenizerJson, {});
    return true;
  } catch {
    return false;
  }
}
