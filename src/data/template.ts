// Prompt templates: how a row's columns become the prompt a model reads and the target it trains on.
//
// A template is text with `{column}` placeholders (`{{` and `}}` write a brace). The LAST placeholder is the
// target: everything before it is the prompt (read only), the target column's text and anything after it are
// trained on. The text just before the target placeholder is the separator between prompt and answer, shown as
// such in the studio. Classification templates may also use `{choices}`: the file's labels, "a, b or c".
//
// Defaults keep the reference formats (lm-evaluation-harness, stanford_alpaca, llm-foundry); where a file's pair of
// columns carries no convention for the join (question/answer, input/output, …) the default separator is a newline.
import { GradPruneError } from '../errors';
import { asText } from './multiple-choice';
import type { ColumnMapping, DatasetFormat, MultipleChoiceSchema } from './types';

export type TemplatePiece = { text: string } | { column: string };

export interface ParsedTemplate {
  source: string;
  /** The prompt: literal text and placeholders before the target placeholder. */
  prompt: TemplatePiece[];
  /** The column whose text is the target (the last placeholder). */
  target: string;
  /** Literal text after the target placeholder (trained on with it). */
  after: string;
  /** The literal text between the prompt's last placeholder and the target placeholder. */
  separator: string;
  /** Every placeholder, in order (the target last). */
  columns: string[];
}

/** The placeholder classification templates use for the file's label list. */
export const CHOICES_PLACEHOLDER = 'choices';

const badTemplate = (source: string, what: string, hint: string) =>
  new GradPruneError('input', `The prompt template ${JSON.stringify(source)} ${what}.`, { subject: 'template', hint });

export function parseTemplate(source: string, columns: readonly string[], extra: readonly string[] = []): ParsedTemplate {
  const pieces: TemplatePiece[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if ((c === '{' || c === '}') && source[i + 1] === c) {
      text += c;
      i++;
    } else if (c === '{') {
      const end = source.indexOf('}', i);
      if (end < 0) throw badTemplate(source, `opens a placeholder at character ${i + 1} that is never closed`, 'Write {column}, or {{ for a literal brace.');
      const column = source.slice(i + 1, end);
      if (!columns.includes(column) && !extra.includes(column)) {
        throw badTemplate(source, `names {${column}}, which is not a column of the file`, `Use the file's columns: ${columns.map((n) => `{${n}}`).join(', ')}${extra.length ? `, or ${extra.map((n) => `{${n}}`).join(', ')}` : ''}.`);
      }
      if (text) pieces.push({ text });
      text = '';
      pieces.push({ column });
      i = end;
    } else if (c === '}') {
      throw badTemplate(source, `has a lone } at character ${i + 1}`, 'Write }} for a literal brace.');
    } else text += c;
  }
  const last = pieces.map((p) => 'column' in p).lastIndexOf(true);
  if (last < 0) throw badTemplate(source, 'has no {column} placeholder, so no row would have a target', 'End the template with the column to train on, e.g. {question}\\n{answer}.');
  const target = (pieces[last] as { column: string }).column;
  if (extra.includes(target)) throw badTemplate(source, `ends with {${target}}, which is not a column to train on`, 'The last placeholder is the target: end with the answer column.');
  const prompt = pieces.slice(0, last);
  const before = prompt[prompt.length - 1];
  return {
    source,
    prompt,
    target,
    after: text,
    separator: before && 'text' in before ? before.text : '',
    columns: [...prompt.flatMap((p) => ('column' in p ? [p.column] : [])), target],
  };
}

/** "a, b or c" (classification's `{choices}`). */
export const labelList = (labels: readonly string[]): string =>
  labels.length <= 2 ? labels.join(' or ') : `${labels.slice(0, -1).join(', ')} or ${labels[labels.length - 1]}`;

/** A template written for a person to read: newlines as \n (what the CLI's --template takes too). */
export const escapeTemplate = (t: string): string => t.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\t', '\\t');
/** The inverse of escapeTemplate: `\n`, `\t` and `\\` typed on one line. */
export const unescapeTemplate = (t: string): string => t.replace(/\\([nt\\])/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));

const SENTIMENTS = new Set(['negative', 'neutral', 'positive']);

/** Pairs whose convention puts the separator in the data (TRL prompt/completion, llm-foundry context/continuation). */
const JOINED_AS_IS = new Set(['prompt/completion', 'context/continuation']);

/** The stanford_alpaca prompt with an input; rows with an empty input get its no-input variant while this is in force. */
export const ALPACA_TEMPLATE = (m: ColumnMapping) =>
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  `### Instruction:\n{${m.instruction}}\n\n### Input:\n{${m.input ?? 'input'}}\n\n### Response:\n{${m.output}}`;

/**
 * The template a format starts with, or null where the layout is fixed (chat: the tokenizer's chat_template; plain
 * text; token ids; the lm-evaluation-harness multiple-choice tasks).
 */
export function defaultTemplate(format: DatasetFormat, schema: MultipleChoiceSchema | null, m: ColumnMapping, labels: readonly string[] = []): string | null {
  if (format === 'instruction' && m.instruction && m.output) return m.input ? ALPACA_TEMPLATE(m) : ALPACA_TEMPLATE(m).replace(/### Input:\n\{[^}]*\}\n\n/, '').replace(', paired with an input that provides further context', '');
  if (format === 'prompt-completion' && m.prompt && m.completion) {
    return JOINED_AS_IS.has(`${m.prompt}/${m.completion}`) ? `{${m.prompt}}{${m.completion}}` : `{${m.prompt}}\n{${m.completion}}`;
  }
  if (format === 'multiple-choice' && schema === 'classification' && m.text && m.answer) {
    const sentiment = labels.length > 0 && labels.every((l) => SENTIMENTS.has(l.toLowerCase()));
    const ask = sentiment ? `What is the sentiment of this sentence: {${CHOICES_PLACEHOLDER}}?` : `Which label fits this sentence: {${CHOICES_PLACEHOLDER}}?`;
    return `Sentence: {${m.text}}\nQuestion: ${ask}\nAnswer: {${m.answer}}`;
  }
  return null;
}

/** A row through a template: the prompt and the target, or why the row cannot be used. */
export function renderRow(
  t: ParsedTemplate,
  rec: Record<string, unknown>,
  opts: { required: readonly string[]; values?: Record<string, string>; roleOf?: (column: string) => string },
): { prompt: string; target: string } | string {
  const name = (c: string) => (opts.roleOf ? `the ${opts.roleOf(c)} (${c})` : `column ${c}`);
  const valueOf = (column: string): string | { reason: string } => {
    if (opts.values && column in opts.values) return opts.values[column];
    const v = rec[column];
    const s = asText(v);
    if (s === null && v !== undefined && v !== null) return { reason: `${name(column)} is ${Array.isArray(v) ? 'a list' : 'an object'}, not text` };
    if ((s === null || s.trim() === '') && (opts.required.includes(column) || column === t.target)) {
      return { reason: `${name(column)} is ${s === null ? 'missing' : 'empty'}` };
    }
    return s ?? '';
  };
  let prompt = '';
  for (const p of t.prompt) {
    if ('text' in p) prompt += p.text;
    else {
      const v = valueOf(p.column);
      if (typeof v !== 'string') return v.reason;
      prompt += v;
    }
  }
  const target = valueOf(t.target);
  if (typeof target !== 'string') return target.reason;
  return { prompt, target: target + t.after };
}
