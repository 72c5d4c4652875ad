// The model's tokenizer, built offline from the dropped tokenizer.json + tokenizer_config.json through
// @huggingface/transformers (the same code in the browser worker and in Node; nothing is fetched).

import { PreTrainedTokenizer, env } from '@huggingface/transformers';
import { GradPruneError } from '../errors';

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
  try {
    return JSON.parse(await blob.text());
  } catch (e) {
    throw new GradPruneError('tokenizer', `${name} is not valid JSON (${(e as Error).message}).`, { subject: name });
  }
}

export async function loadTokenizer(files: ReadonlyMap<string, Blob>): Promise<TextTokenizer> {
  const tokenizerJson = await readJson(files, 'tokenizer.json');
  const tokenizerConfig = await readJson(files, 'tokenizer_config.json');
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new GradPruneError('tokenizer', `tokenizer.json could not be read as a tokenizer (${(e as Error).message}).`, { subject: 'tokenizer.json' });
  }
  const vocab = tok.get_vocab();
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
