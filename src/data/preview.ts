// What the UI shows about a tokenized dataset: the first rows as the model sees them (token by token, prompt vs
// target), counts, a token-length histogram, and the rejected rows with their reasons.
import type { TextTokenizer } from '../model/tokenizer';
import type { RejectedRow, TokenizeStats, TokenizedSet } from './types';

export interface PreviewToken {
  id: number;
  /** The token's text as it reads in context (a leading space shows as a space; special tokens by name). */
  text: string;
  /** True when the token is a training target (lossMask 1). */
  target: boolean;
}

export interface PreviewRow {
  line: number;
  where: string;
  tokens: PreviewToken[];
  truncated: boolean;
}

export interface LengthHistogram {
  /** Bin edges in tokens: bin i holds lengths in [edges[i], edges[i+1]). The last edge is maxLength + 1. */
  edges: number[];
  counts: number[];
}

export interface DatasetPreview {
  fileName: string;
  format: TokenizedSet['format'];
  stats: TokenizeStats;
  rows: PreviewRow[];
  histogram: LengthHistogram;
  /** The first rejected rows (all of them are in TokenizedSet.rejected; stats.rejected is the total). */
  rejected: RejectedRow[];
}

/** Each token's text: what decoding adds when the token follows its predecessor (keeps SentencePiece spaces). */
export function tokenTexts(tokenizer: TextTokenizer, ids: readonly number[]): string[] {
  const opts = { skipSpecialTokens: false };
  return ids.map((id, i) => {
    if (i === 0) return tokenizer.decode([id], opts);
    const before = tokenizer.decode([ids[i - 1]], opts);
    const both = tokenizer.decode([ids[i - 1], id], opts);
    return both.startsWith(before) ? both.slice(before.length) : tokenizer.decode([id], opts);
  });
}

export function lengthHistogram(lengths: readonly number[], bins = 20): LengthHistogram {
  const max = lengths.reduce((m, x) => Math.max(m, x), 0);
  const width = Math.max(1, Math.ceil((max + 1) / bins));
  const n = Math.max(1, Math.ceil((max + 1) / width));
  const counts = new Array<number>(n).fill(0);
  for (const len of lengths) counts[Math.floor(len / width)]++;
  const edges = Array.from({ length: n + 1 }, (_, i) => Math.min(i * width, max + 1));
  return { edges, counts };
}

export function previewDataset(set: TokenizedSet, tokenizer: TextTokenizer, opts: { rows?: number; bins?: number; rejected?: number } = {}): DatasetPreview {
  const whereOf = (line: number) => (set.lineKind === 'line' ? `line ${line}` : `${set.lineKind} ${line}`);
  const rows = set.examples.slice(0, opts.rows ?? 5).map((e) => {
    const texts = tokenTexts(tokenizer, e.inputIds);
    return {
      line: e.line,
      where: whereOf(e.line),
      truncated: e.truncated,
      tokens: e.inputIds.map((id, t) => ({ id, text: texts[t], target: e.lossMask[t] === 1 })),
    };
  });
  return {
    fileName: set.fileName,
    format: set.format,
    stats: set.stats,
    rows,
    histogram: lengthHistogram(set.examples.map((e) => e.inputIds.length), opts.bins),
    rejected: set.rejected.slice(0, opts.rejected ?? 50),
  };
}
