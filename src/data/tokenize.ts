// Examples → token ids + loss masks.
//
// Each example is a list of segments (prompt, target; or a chat's turns) tokenized one by one and concatenated, so
// that (1) the boundary between prompt and target is always a token boundary and the loss mask is exact, (2) the
// prompt's ids do not depend on the target (all choices of a question share the same context ids, as the scorer
// needs), and (3) cutting the prompt never changes the target's tokens.
//
// A segment after the first is encoded as a continuation: the text is encoded after a "\n" anchor whose ids are then
// removed (torchtune's trick). This keeps a leading space meaningful for SentencePiece tokenizers (which would
// otherwise add their own "▁" to every separately encoded piece) and is a no-op for byte-level BPE. If the anchor's
// ids are not a prefix of the result (a merge across the anchor), the plain encoding is used and counted.
// Trailing spaces of a segment move to the start of the next one (as lm-evaluation-harness does), so "Answer: " +
// "yes" tokenizes as "Answer:" + " yes".
//
// BOS: the first segment gets the special tokens the tokenizer's add_special_tokens puts in front (BOS for Llama and
// Mistral, none for Qwen2), unless its text already starts with them (chat templates that write "<s>").
// EOS: appended to the target of prompt/target examples (option appendEos; the dataset's setting: on, off for
// classification labels, which are scored by log-likelihood and end where the label ends) so the model learns to stop;
// chat templates end assistant turns themselves; the plain chat fallback appends EOS to each assistant turn.
// Position 0 is never a target (nothing predicts it): lossMask[0] is always 0.
//
// Truncation to maxSeqLen: the prompt is cut from the left (its BOS kept), because the end of the prompt (the question,
// "Answer:") sits next to the target and matters most; it keeps at least a quarter of maxSeqLen. If the row still does
// not fit, the target is cut on the right. Text, chat and token rows are cut on the right. Both are counted; a row
// left with no target token is rejected.
import { GradPruneError } from '../errors';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer';
import type { Dataset, Example, LineKind, RejectedRow, TokenizedExample, TokenizedSet } from './types';

export interface BuildOptions {
  maxSeqLen: number;
  /** 'target' (default): loss on the answer/response tokens only; 'all': on every token. */
  loss?: 'target' | 'all';
  /** Append EOS after each target (default: the dataset's `appendEos`: on, off for classification labels). */
  appendEos?: boolean;
  /** Called every few hundred rows and at the end (tokenizing thousands of rows takes seconds). */
  onProgress?: (done: number, total: number) => void;
}

export interface Segment {
  text: string;
  train: boolean;
  /** Append the EOS token after this segment (part of the same train flag). */
  eos?: boolean;
}

/** Encoding helpers bound to one tokenizer (computed once: the BOS prefix and the continuation anchor). */
export class SegmentEncoder {
  readonly prefix: number[];
  private readonly anchor: number[];
  /** How many continuations fell back to plain encoding. */
  fallbacks = 0;

  constructor(readonly tokenizer: TextTokenizer) {
    const withSpecials = tokenizer.encode('a', { addSpecialTokens: true });
    const bare = tokenizer.encode('a', { addSpecialTokens: false });
    const at = indexOfSeq(withSpecials, bare);
    this.prefix = at > 0 ? withSpecials.slice(0, at) : [];
    this.anchor = tokenizer.encode('\n', { addSpecialTokens: false });
  }

  /** The start of a sequence: special prefix + text, without doubling a prefix the text already spells out. */
  start(text: string): number[] {
    const ids = text === '' ? [] : this.tokenizer.encode(text, { addSpecialTokens: false });
    return startsWith(ids, this.prefix) ? ids : [...this.prefix, ...ids];
  }

  continuation(text: string): number[] {
    if (text === '') return [];
    const ids = this.tokenizer.encode(`\n${text}`, { addSpecialTokens: false });
    if (startsWith(ids, this.anchor)) return ids.slice(this.anchor.length);
    this.fallbacks++;
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  /** Segments → ids and per-token train flags (before truncation). */
  encode(segments: Segment[]): { ids: number[]; train: number[] } {
    const ids: number[] = [];
    const train: number[] = [];
    let atStart = true;
    for (const s of moveTrailingSpaces(segments)) {
      let piece: number[] = [];
      let untrainedHead = 0;
      if (atStart && s.text !== '') {
        // The first text of the sequence is a document start (SentencePiece adds its "▁" here, as HF does).
        piece = this.start(s.text);
        untrainedHead = this.prefix.length;
        atStart = false;
      } else if (!atStart) {
        piece = this.continuation(s.text);
      }
      if (s.eos && this.tokenizer.eosTokenId !== null) piece.push(this.tokenizer.eosTokenId);
      piece.forEach((id, k) => {
        ids.push(id);
        train.push(s.train && k >= untrainedHead ? 1 : 0);
      });
    }
    if (atStart) {
      ids.unshift(...this.prefix);
      train.unshift(...this.prefix.map(() => 0));
    }
    return { ids, train };
  }
}

function indexOfSeq(hay: number[], needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const startsWith = (ids: number[], prefix: number[]) => prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);

function moveTrailingSpaces(segments: Segment[]): Segment[] {
  const out = segments.map((s) => ({ ...s }));
  for (let i = 0; i + 1 < out.length; i++) {
    const m = / +$/.exec(out[i].text);
    if (m && out[i].text.length > m[0].length) {
      out[i].text = out[i].text.slice(0, -m[0].length);
      out[i + 1].text = m[0] + out[i + 1].text;
    }
  }
  return out;
}

/** The plain chat layout used when the tokenizer has no chat_template. */
export function plainChatSegments(messages: ChatMessage[]): Segment[] {
  const segs: Segment[] = [];
  const label = (role: string) => role[0].toUpperCase() + role.slice(1);
  let pending = '';
  for (const m of messages) {
    if (m.role === 'assistant') {
      segs.push({ text: `${pending}Assistant:`, train: false });
      segs.push({ text: ` ${m.content.trim()}`, train: true, eos: true });
      pending = '\n';
    } else {
      pending += `${label(m.role)}: ${m.content.trim()}\n`;
    }
  }
  if (pending.trim() !== '') segs.push({ text: pending, train: false });
  return segs;
}

/**
 * Chat through the tokenizer's template: each assistant turn is what the template adds between rendering the
 * conversation up to that turn with the generation prompt and rendering it through that turn.
 */
export function templateChatSegments(messages: ChatMessage[], render: NonNullable<TextTokenizer['applyChatTemplate']>): Segment[] | string {
  const segs: Segment[] = [];
  let done = '';
  try {
    for (let i = 0; i < messages.length; i++) {
      if (messages[i].role !== 'assistant') continue;
      const through = render(messages.slice(0, i + 1));
      let before = render(messages.slice(0, i), { addGenerationPrompt: true });
      if (!through.startsWith(before)) before = render(messages.slice(0, i));
      if (!through.startsWith(before) || !before.startsWith(done)) {
        return 'the chat template does not render this conversation turn by turn, so the assistant tokens cannot be found';
      }
      segs.push({ text: before.slice(done.length), train: false });
      segs.push({ text: through.slice(before.length), train: true });
      done = through;
    }
    const full = render(messages);
    if (full.startsWith(done) && full.length > done.length) segs.push({ text: full.slice(done.length), train: false });
  } catch (e) {
    // A template that runs away is refused as a whole (model/tokenizer.ts); one that fails is this row's problem.
    if (e instanceof GradPruneError) throw e;
    return `the chat template failed on this conversation (${(e as Error).message})`;
  }
  return segs;
}

export interface TokenizedPair {
  inputIds: number[];
  lossMask: number[];
  /** Ids before the first continuation token. */
  promptLength: number;
}

/**
 * One prompt + continuation, tokenized exactly as buildExamples does (for scoring multiple-choice requests:
 * appendEos false). No truncation.
 */
export function tokenizePair(encoder: SegmentEncoder, prompt: string, continuation: string, opts: { appendEos?: boolean } = {}): TokenizedPair {
  const { ids, train } = encoder.encode([
    { text: prompt, train: false },
    { text: continuation, train: true, eos: opts.appendEos ?? false },
  ]);
  const promptLength = train.indexOf(1) < 0 ? ids.length : train.indexOf(1);
  return { inputIds: ids, lossMask: train.map((x, t) => (t === 0 ? 0 : x)), promptLength };
}

function segmentsOf(e: Example, tokenizer: TextTokenizer, appendEos: boolean): Segment[] | string {
  if (e.kind === 'text') return [{ text: e.prompt, train: false }, { text: e.target, train: true, eos: appendEos }];
  if (e.kind === 'chat') return tokenizer.applyChatTemplate ? templateChatSegments(e.messages, tokenizer.applyChatTemplate) : plainChatSegments(e.messages);
  return 'token rows have no segments';
}

/** A row's location as a person reads it: "line 12" (JSONL, CSV), "element 3" (JSON), "row 7" (Parquet). */
export const rowWhere = (lineKind: LineKind, line: number): string => (lineKind === 'line' ? `line ${line}` : `${lineKind} ${line}`);

export function buildExamples(dataset: Dataset, tokenizer: TextTokenizer, opts: BuildOptions): TokenizedSet {
  const maxSeqLen = opts.maxSeqLen;
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 2) throw new RangeError(`maxSeqLen must be an integer ≥ 2 (got ${maxSeqLen})`);
  const lossAll = opts.loss === 'all';
  const appendEos = opts.appendEos ?? dataset.appendEos ?? true;
  const encoder = new SegmentEncoder(tokenizer);
  const rejected: RejectedRow[] = [...dataset.rejected];
  const examples: TokenizedExample[] = [];
  let truncatedPrompt = 0;
  let truncatedTarget = 0;
  const whereOf = (line: number) => rowWhere(dataset.lineKind, line);

  const total = dataset.examples.length;
  for (let i = 0; i < total; i++) {
    if (opts.onProgress && i % 256 === 0) opts.onProgress(i, total);
    const e = dataset.examples[i];
    let ids: number[];
    let train: number[];
    let cutPrompt = false;
    let cutTarget = false;
    if (e.kind === 'tokens') {
      const tooBig = e.inputIds.findIndex((id) => id >= tokenizer.vocabSize);
      if (tooBig >= 0) {
        rejected.push({ line: e.line, where: whereOf(e.line), reason: `token id ${e.inputIds[tooBig]} at position ${tooBig} is outside the tokenizer's vocabulary (${tokenizer.vocabSize} ids)` });
        continue;
      }
      ids = e.inputIds;
      train = e.lossMask ?? e.inputIds.map(() => 1);
    } else {
      const segs = segmentsOf(e, tokenizer, appendEos);
      if (typeof segs === 'string') {
        rejected.push({ line: e.line, where: whereOf(e.line), reason: segs });
        continue;
      }
      ({ ids, train } = encoder.encode(segs));
    }
    if (ids.length > maxSeqLen) {
      const firstTarget = train.indexOf(1);
      const promptHasText = e.kind === 'text' && e.prompt !== '' && firstTarget > encoder.prefix.length;
      if (promptHasText) {
        const prefix = encoder.prefix.length;
        const promptLen = firstTarget;
        const floor = Math.min(promptLen, prefix + Math.floor(maxSeqLen / 4));
        const keepPrompt = Math.max(floor, maxSeqLen - (ids.length - promptLen));
        if (keepPrompt < promptLen) {
          const drop = promptLen - keepPrompt;
          ids = [...ids.slice(0, prefix), ...ids.slice(prefix + drop)];
          train = [...train.slice(0, prefix), ...train.slice(prefix + drop)];
          cutPrompt = true;
        }
      }
      if (ids.length > maxSeqLen) {
        ids = ids.slice(0, maxSeqLen);
        train = train.slice(0, maxSeqLen);
        cutTarget = true;
      }
    }
    const lossMask = train.map((x, t) => (t === 0 ? 0 : lossAll ? 1 : x));
    if (!lossMask.includes(1)) {
      rejected.push({
        line: e.line,
        where: whereOf(e.line),
        reason: cutPrompt || cutTarget ? `no target token is left after truncation to ${maxSeqLen} tokens` : 'the row has no target token to train on',
      });
      continue;
    }
    if (cutPrompt) truncatedPrompt++;
    if (cutTarget) truncatedTarget++;
    const firstTarget = train.indexOf(1);
    examples.push({
      line: e.line,
      inputIds: ids,
      lossMask,
      promptLength: firstTarget < 0 ? 0 : firstTarget,
      truncated: cutPrompt || cutTarget,
      mc: e.kind === 'text' ? e.mc : undefined,
    });
  }
  opts.onProgress?.(total, total);
  rejected.sort((a, b) => a.line - b.line);
  const tokens = examples.reduce((s, x) => s + x.inputIds.length, 0);
  return {
    fileName: dataset.fileName,
    format: dataset.format,
    lineKind: dataset.lineKind,
    examples,
    rejected,
    stats: {
      rows: dataset.totalRows,
      examples: examples.length,
      rejected: rejected.length,
      truncatedPrompt,
      truncatedTarget,
      tokens,
      targetTokens: examples.reduce((s, x) => s + x.lossMask.reduce((a, b) => a + b, 0), 0),
      maxLength: examples.reduce((m, x) => Math.max(m, x.inputIds.length), 0),
      meanLength: examples.length ? tokens / examples.length : 0,
    },
    maxSeqLen,
    padTokenId: tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0,
    appendEos,
  };
}
