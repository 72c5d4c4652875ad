// The shapes that flow through src/data: file → records → examples → token ids + loss masks → batches.
import type { ChatMessage } from '../model/tokenizer';

export type DatasetFormat = 'instruction' | 'prompt-completion' | 'chat' | 'text' | 'multiple-choice' | 'pretokenized';

/**
 * Which multiple-choice layout a file follows (each one is converted as lm-evaluation-harness does):
 * - `mosaicml`: `query`, `choices[]`, `gold` (llm-foundry's ICL files: ARC, PIQA, small HellaSwag)
 * - `winogrande`: `context_options[]`, `continuation`, `gold` (llm-foundry) or `sentence`, `option1/2`, `answer` (original)
 * - `hellaswag`: `ctx` (or `ctx_a`+`ctx_b`), `activity_label`, `endings[]`, `label` (rowanz/hellaswag)
 * - `pubmedqa`: `QUESTION`, `CONTEXTS[]`, `final_decision` yes/no/maybe (ori_pqal.json)
 * - `question`: a question, the choices (array, lettered lines "A. …\nB. …", or {text[], label[]}), and the answer
 *    (index, letter, the choice text, or "A. text"); MedMCQA, HF ARC, and any mapping the person sets
 * - `classification`: a text and a label; the choices are the labels seen in the file (financial sentiment)
 */
export type MultipleChoiceSchema = 'mosaicml' | 'winogrande' | 'hellaswag' | 'pubmedqa' | 'question' | 'classification';

/** Column roles a person can map (format override + mapping): role → column name in the file. */
export interface ColumnMapping {
  instruction?: string;
  input?: string;
  output?: string;
  prompt?: string;
  completion?: string;
  messages?: string;
  text?: string;
  question?: string;
  choices?: string;
  answer?: string;
  context?: string;
  inputIds?: string;
  lossMask?: string;
  labels?: string;
}

export interface ReadOptions {
  /** Skip detection and read the file as this format. */
  format?: DatasetFormat;
  /** Columns for the roles of the format (merged over the detected ones). */
  columns?: ColumnMapping;
  /** For `multiple-choice`: force a layout (otherwise from the columns). */
  multipleChoiceSchema?: MultipleChoiceSchema;
  /**
   * The prompt template (template.ts): `{column}` placeholders, the last one the target, e.g. "{question}\n{answer}".
   * Default: the format's own (null for formats whose layout is fixed).
   */
  template?: string;
  /** Append the tokenizer's EOS after each target (default: on, off for classification labels). */
  appendEos?: boolean;
}

/** How `line` numbers of a file read: 1-based text lines (JSONL, CSV), 0-based element index (JSON), 0-based row (Parquet). */
export type LineKind = 'line' | 'element' | 'row';

export interface RejectedRow {
  /** See LineKind: a 1-based line for JSONL/CSV, a 0-based index for JSON arrays and Parquet. */
  line: number;
  /** The location as a person reads it: "line 12", "element 3", "entry \"21645374\"", "row 7". */
  where: string;
  reason: string;
}

/**
 * One multiple-choice question, ready to score by log-likelihood as lm-evaluation-harness does: for each choice i,
 * log P(requests[i].continuation | requests[i].context); accuracy picks the argmax (acc_norm: divided by the
 * continuation's length in characters or bytes). Continuations start with the delimiter (usually one space).
 */
export interface MultipleChoiceItem {
  line: number;
  /** The shared question text (WinoGrande: the sentence up to the blank, i.e. the contexts' common prefix). */
  context: string;
  /** The answers as a person reads them. */
  choices: string[];
  /** Index of the correct choice. */
  gold: number;
  /** What to score per choice (same length as choices). */
  requests: { context: string; continuation: string }[];
  /** WinoGrande partial scoring: the contexts differ per choice and the continuation is shared. */
  partial: boolean;
}

export type Example =
  | { kind: 'text'; line: number; prompt: string; target: string; mc?: MultipleChoiceItem }
  | { kind: 'chat'; line: number; messages: ChatMessage[] }
  | { kind: 'tokens'; line: number; inputIds: number[]; lossMask: number[] | null };

export interface Dataset {
  fileName: string;
  format: DatasetFormat;
  /** For multiple-choice files. */
  multipleChoiceSchema: MultipleChoiceSchema | null;
  /** Why this format: "columns instruction, input, output" or "set by you". */
  detectedFrom: string;
  /** Columns seen in the file (union over the first rows). */
  columns: string[];
  /** The columns used for each role. */
  mapping: ColumnMapping;
  lineKind: LineKind;
  /** Rows read from the file (usable + rejected). */
  totalRows: number;
  examples: Example[];
  rejected: RejectedRow[];
  /** The multiple-choice items of the examples that have one (for log-likelihood scoring). */
  multipleChoice: MultipleChoiceItem[];
  /** The prompt template the rows were read with (null: the format's layout is fixed: chat, text, token ids, lm-eval tasks). */
  template: string | null;
  /** True when `template` is the format's default. */
  templateIsDefault: boolean;
  /** Whether targets end with the tokenizer's EOS (what buildExamples does unless told otherwise). */
  appendEos: boolean;
}

export interface TokenizedExample {
  line: number;
  inputIds: number[];
  /** 1 where the token is a training target (position t's logits are trained on token t+1 iff lossMask[t+1] == 1). */
  lossMask: number[];
  /** Tokens before the first target token (the prompt, incl. BOS); for chat, before the first assistant token. */
  promptLength: number;
  truncated: boolean;
  mc?: MultipleChoiceItem;
}

export interface TokenizeStats {
  rows: number;
  examples: number;
  rejected: number;
  /** Rows whose prompt lost tokens on the left to fit maxSeqLen. */
  truncatedPrompt: number;
  /** Rows whose target (or text / chat / token row) lost tokens on the right to fit maxSeqLen. */
  truncatedTarget: number;
  tokens: number;
  targetTokens: number;
  maxLength: number;
  meanLength: number;
}

export interface TokenizedSet {
  fileName: string;
  format: DatasetFormat;
  lineKind: LineKind;
  examples: TokenizedExample[];
  /** Rows rejected while reading and while tokenizing. */
  rejected: RejectedRow[];
  stats: TokenizeStats;
  maxSeqLen: number;
  /** The id batches are padded with: the tokenizer's pad token, else its EOS, else 0 (padding is never trained on). */
  padTokenId: number;
  /** Whether the targets end with EOS (trained on, and counted in the held-out loss). */
  appendEos: boolean;
}

/**
 * (B, T) token rows, row-major, right-padded with `padTokenId` (loss mask 0 there): the one batch type from src/data
 * to the GPU. The engine reads it as it is; rows past B and positions past T in its own buffers are padding too.
 */
export interface TokenBatch {
  B: number;
  T: number;
  inputIds: Int32Array; // (B, T)
  /** 1 where the token is a training target (position t's logits are trained on token t+1 iff lossMask[t+1] == 1). */
  lossMask: Int32Array; // (B, T)
  /** The id in the padding, decided once (TokenizedSet.padTokenId for a dataset's batches). */
  padTokenId: number;
  /** Real (unpadded) length of each row; absent: every row is T tokens. */
  lengths?: number[];
}

/** One training or evaluation batch of tokenized examples. */
export interface Batch extends TokenBatch {
  /** Real (unpadded) length of each row. */
  lengths: number[];
  /** Source line of each row (see LineKind). */
  lines: number[];
  /** Epoch the batch's first row came from (0-based) and the batch's index (0-based). */
  epoch: number;
  step: number;
}
