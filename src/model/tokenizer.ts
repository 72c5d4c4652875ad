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

/**
 * What one rendering of a chat template may use. Jinja has no while loop, but a hostile template can loop over a
 * huge range(), nest loops, recurse through a macro or build a huge string; each of those ends here, refused
 * naming tokenizer_config.json, instead of hanging the CLI or the worker.
 */
export const CHAT_TEMPLATE_LIMITS = { loopIterations: 100_000, milliseconds: 2_000, outputChars: 4 * 2 ** 20 } as const;

const runawayTemplate = (what: string) =>
  new GradPruneError('tokenizer', `tokenizer_config.json: the chat_template ${what}, so it was stopped; a chat template renders a conversation in well under a second.`, {
    subject: 'tokenizer_config.json',
    hint: 'Use the tokenizer_config.json of the original checkpoint (its "chat_template"), or remove "chat_template" to use the plain "User: …\nAssistant: …" layout.',
  });

/**
 * The template with its work made countable: every range() becomes gp_range() and every for loop calls gp_tick() once
 * per iteration (an empty `{% if %}` with the loop tag's whitespace control, so the output is unchanged).
 */
export function countedTemplate(source: string): string {
  return source
    .replace(/\brange\s*\(/g, 'gp_range(')
    .replace(/\{%(-?)(\s*for\s[\s\S]*?)(-?)%\}/g, (_, open: string, body: string, close: string) => `{%${open}${body}${close}%}{% if gp_tick() %}{% endif ${close}%}`);
}

/** gp_range and gp_tick, counted against one rendering's budget of loop iterations and time. */
function templateBudget() {
  const started = performance.now();
  let left = CHAT_TEMPLATE_LIMITS.loopIterations;
  const spend = (n: number) => {
    left -= n;
    if (left < 0) throw runawayTemplate(`loops more than ${CHAT_TEMPLATE_LIMITS.loopIterations} times over one conversation`);
    if (performance.now() - started > CHAT_TEMPLATE_LIMITS.milliseconds) throw runawayTemplate(`ran for more than ${CHAT_TEMPLATE_LIMITS.milliseconds / 1000} s on one conversation`);
  };
  return {
    started,
    gp_tick: () => void spend(1),
    gp_range: (start: number, stop?: number, step = 1): number[] => {
      if (stop === undefined) [start, stop] = [0, start];
      if (step === 0) throw new Error('range() step must not be zero');
      const n = Math.max(0, Math.ceil((stop - start) / step));
      spend(n);
      return Array.from({ length: n }, (_, i) => start + i * step);
    },
  };
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
  const counted = new Map<string, string>();
  return {
    encode: (text, opts) => tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }),
    // transformers.js refuses an empty list ("token_ids must be a non-empty array"); nothing decodes to ''.
    decode: (ids, opts) => (ids.length === 0 ? '' : tok.decode([...ids], { skip_special_tokens: opts?.skipSpecialTokens ?? true })),
    bosTokenId: idOf(tok.bos_token_id),
    eosTokenId: idOf(tok.eos_token_id),
    padTokenId: idOf(tok.pad_token_id),
    vocabSize: vocab.size,
    applyChatTemplate: hasTemplate ? (messages, opts) => renderChat(tok, counted, messages, opts?.addGenerationPrompt ?? false) : null,
  };
}

/** One conversation through the chat template, within CHAT_TEMPLATE_LIMITS. */
function renderChat(tok: PreTrainedTokenizer, counted: Map<string, string>, messages: ChatMessage[], addGenerationPrompt: boolean): string {
  const source = tok.get_chat_template({}) as string;
  let template = counted.get(source);
  if (template === undefined) counted.set(source, (template = countedTemplate(source)));
  const { started, gp_tick, gp_range } = templateBudget();
  let out: string;
  try {
    out = tok.apply_chat_template(messages as never, { tokenize: false, add_generation_prompt: addGenerationPrompt, chat_template: template, gp_tick, gp_range } as never) as unknown as string;
  } catch (e) {
    if (e instanceof GradPruneError) throw e;
    const message = (e as Error).message ?? String(e);
    // Errors thrown inside template functions may come back re-wrapped: keep the budget's own words.
    const ours = /the chat_template (.*?), so it was stopped/s.exec(message);
    if (ours) throw runawayTemplate(ours[1]);
    // The stack overflow of runaway recursion, or a string past what JavaScript can hold.
    if (e instanceof RangeError) throw runawayTemplate(`recurses or grows without end (${message})`);
    throw e;
  }
  if (out.length > CHAT_TEMPLATE_LIMITS.outputChars) throw runawayTemplate(`wrote ${out.length} characters for one conversation (more than ${CHAT_TEMPLATE_LIMITS.outputChars})`);
  if (performance.now() - started > CHAT_TEMPLATE_LIMITS.milliseconds) throw runawayTemplate(`ran for more than ${CHAT_TEMPLATE_LIMITS.milliseconds / 1000} s on one conversation`);
  return out;
}

function buildsAlone(tokenizerJson: Record<string, unknown>): boolean {
  try {
    new PreTrainedTokenizer(tokenizerJson, {});
    return true;
  } catch {
    return false;
  }
}
