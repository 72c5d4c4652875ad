// Exact match of generated answers, as GradPruner's own evaluation scores a fine-tuned model: each example's prompt is
// continued greedily (through generateIds: the GPU's KV-cache Generator, or the CPU reference recomputing) and the
// decoded continuation is compared with the example's label.
//
// The label is the row's target as it was trained on: the answer of prompt/answer and instruction rows, the label
// text of classification rows (" positive"), the gold continuation of multiple-choice rows (" A. <answer text>" for
// lettered questions, the choice text for ARC/PIQA-style files). Rows without a prompt (plain text, token rows, chat)
// have no label to generate and are skipped, each with the reason.
//
// Length: the label's token count plus a margin (default 4: room for EOS and a tokenization that differs from the
// label's), or a fixed number of new tokens; generation stops at EOS. Where targets are not followed by EOS
// (classification labels by default, `--no-eos`) the model was never taught to stop, so the margin defaults to 0.
//
// exact_match: generated.trim() === label.trim(). normalised: normalizeAnswer of both equal (rules below).

import { rowWhere, SegmentEncoder, tokenizePair } from '../data/tokenize';
import type { Example, LineKind } from '../data/types';
import { GradPruneError } from '../errors';
import type { TextTokenizer } from '../model/tokenizer';
import { generateIds, type Generated, type NextTokenModel } from './generation';

/** New tokens beyond the label's length when targets end with EOS. */
export const EXACT_MATCH_MARGIN = 4;

/** The default margin of a set: 0 where its targets are not followed by EOS (the model never learnt to stop). */
export const marginFor = (appendEos: boolean): number => (appendEos ? EXACT_MATCH_MARGIN : 0);

const ARTICLES = new Set(['a', 'an', 'the']);

/**
 * SQuAD's answer normaliser (normalize_answer of the v1.1 evaluation script), written here: lower-case; remove
 * punctuation and symbols (every Unicode P* and S* character, a superset of Python's string.punctuation; removed, not
 * replaced by a space, so "don't" → "dont"); drop the English articles a, an, the as whole words; collapse runs of
 * whitespace to one space and trim.
 */
export function normalizeAnswer(text: string): string {
  const words = text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, '')
    .split(/\s+/u)
    .filter((w) => w !== '' && !ARTICLES.has(w));
  return words.join(' ');
}

export const exactMatchOf = (generated: string, label: string): boolean => generated.trim() === label.trim();
export const normalizedMatchOf = (generated: string, label: string): boolean => normalizeAnswer(generated) === normalizeAnswer(label);

/** One example to answer: its prompt's ids (as trained: BOS, template) and its label. */
export interface ExactMatchItem {
  line: number;
  /** The row as a person finds it in the file ("line 12", "element 3"). */
  where: string;
  promptIds: number[];
  label: string;
  /** The label's tokens after the prompt (without EOS). */
  labelTokens: number;
}

export interface SkippedRow {
  where: string;
  reason: string;
}

/** The examples that have a prompt and a label, in order; the others with why not. */
export function exactMatchItems(examples: readonly Example[], tokenizer: TextTokenizer, lineKind: LineKind): { items: ExactMatchItem[]; skipped: SkippedRow[] } {
  const encoder = new SegmentEncoder(tokenizer);
  const items: ExactMatchItem[] = [];
  const skipped: SkippedRow[] = [];
  for (const e of examples) {
    const where = rowWhere(lineKind, e.line);
    if (e.kind !== 'text') {
      skipped.push({ where, reason: e.kind === 'chat' ? 'a conversation has no single prompt and label' : 'a token row has no label text' });
      continue;
    }
    if (e.prompt.trim() === '') {
      skipped.push({ where, reason: 'the row is plain text, with no prompt to answer' });
      continue;
    }
    const pair = tokenizePair(encoder, e.prompt, e.target);
    const labelTokens = pair.inputIds.length - pair.promptLength;
    if (labelTokens === 0 || e.target.trim() === '') {
      skipped.push({ where, reason: 'the label is empty' });
      continue;
    }
    items.push({ line: e.line, where, promptIds: pair.inputIds.slice(0, pair.promptLength), label: e.target, labelTokens });
  }
  return { items, skipped };
}

/** Refuse a set with nothing to answer, naming the file and what would work. */
export function requireExactMatchItems(fileName: string, format: string, items: readonly ExactMatchItem[], skipped: readonly SkippedRow[]): void {
  if (items.length > 0) return;
  const why = skipped[0] ? ` (${skipped[0].where}: ${skipped[0].reason})` : '';
  throw new GradPruneError('dataset', `${fileName}: exact match needs rows with a prompt and a label to compare the generated answer with, and none of its ${skipped.length} ${format} rows has one${why}.`, {
    subject: fileName,
    hint:
      'Use a prompt/answer, instruction, classification or multiple-choice file, or read this one with a prompt template ' +
      'whose last column is the answer (--template "{question}\\n{answer}"); leave exact match off for plain text.',
  });
}

export interface ExactMatchOptions {
  /** A fixed number of new tokens for every example (default: each label's token count + margin). */
  maxNewTokens?: number | null;
  /** Tokens beyond the label's length (default EXACT_MATCH_MARGIN, or 0 where targets carry no EOS). */
  margin?: number;
  /** Ids that end a generation (stopIdsOf). */
  stopIds: readonly number[];
  /** Called after each example with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** The new-token budget of one item. */
export const budgetOf = (item: ExactMatchItem, opts: Pick<ExactMatchOptions, 'maxNewTokens' | 'margin'>): number =>
  opts.maxNewTokens ?? item.labelTokens + (opts.margin ?? EXACT_MATCH_MARGIN);

/** The sequence length a generation engine needs for these items: the longest prompt + budget (capped by `cap`). */
export const generationLength = (items: readonly ExactMatchItem[], opts: Pick<ExactMatchOptions, 'maxNewTokens' | 'margin'>, cap: number): number =>
  Math.min(cap, Math.max(2, ...items.map((i) => i.promptIds.length + budgetOf(i, opts))));

/**
 * The prompt cut from the left (after its first token, BOS where the tokenizer adds one) so that `budget` new tokens
 * fit in `maxLength`; the label's end is what the answer depends on most.
 */
export function fitPrompt(promptIds: readonly number[], budget: number, maxLength: number): number[] {
  const room = maxLength - Math.min(budget, maxLength - 1);
  if (promptIds.length <= room) return [...promptIds];
  return room <= 1 ? promptIds.slice(promptIds.length - 1) : [promptIds[0], ...promptIds.slice(promptIds.length - (room - 1))];
}

export interface ExactMatchRow {
  line: number;
  where: string;
  label: string;
  generated: string;
  stop: Generated['stop'];
  /** Generated tokens (EOS included when it stopped there). */
  tokens: number;
  match: boolean;
  normalizedMatch: boolean;
}

export interface ExactMatchResult {
  exactMatch: number;
  normalizedExactMatch: number;
  items: number;
  rows: ExactMatchRow[];
}

/** Greedy answers to each item by one model, scored against the labels. */
export async function scoreExactMatch(model: NextTokenModel, tokenizer: TextTokenizer, items: readonly ExactMatchItem[], opts: ExactMatchOptions): Promise<ExactMatchResult> {
  const rows: ExactMatchRow[] = [];
  for (const item of items) {
    const budget = Math.max(1, budgetOf(item, opts));
    const g = await generateIds(model, fitPrompt(item.promptIds, budget, model.maxLength), { maxNewTokens: budget, temperature: 0, stopIds: opts.stopIds });
    const generated = tokenizer.decode(g.ids, { skipSpecialTokens: true });
    rows.push({
      line: item.line,
      where: item.where,
      label: item.label,
      generated,
      stop: g.stop,
      tokens: g.ids.length,
      match: exactMatchOf(generated, item.label),
      normalizedMatch: normalizedMatchOf(generated, item.label),
    });
    opts.onProgress?.(rows.length, items.length);
  }
  const share = (n: number) => (rows.length ? n / rows.length : 0);
  return {
    exactMatch: share(rows.filter((r) => r.match).length),
    normalizedExactMatch: share(rows.filter((r) => r.normalizedMatch).length),
    items: rows.length,
    rows,
  };
}
