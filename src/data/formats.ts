// Records → examples: which format a file is (from its columns, or as the person set it) and each row's conversion.
import type { ChatMessage } from '../model/tokenizer';
import type { SourceRecord } from './read';
import type { ColumnMapping, DatasetFormat, MultipleChoiceSchema } from './types';
import { labelList, renderRow, CHOICES_PLACEHOLDER, type ParsedTemplate } from './template';
import {
  asText,
  classificationExample,
  fromHellaswag,
  fromMosaicml,
  fromPubmedqa,
  fromQuestion,
  fromWinogrande,
  labelSet,
  lettersInPrompt,
  type Converted,
} from './multiple-choice';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['instruction', 'prompt-completion', 'chat', 'text', 'multiple-choice', 'pretokenized'];

export interface Detected {
  format: DatasetFormat;
  schema: MultipleChoiceSchema | null;
  mapping: ColumnMapping;
  because: string;
}

/** The standard Alpaca prompt (stanford_alpaca), ending in "### Response:\n" as the Alpaca data's own `text` column does. */
export function alpacaPrompt(instruction: string, input: string): string {
  return input.trim() !== ''
    ? 'Below is an instruction that describes a task, paired with an input that provides further context. ' +
        'Write a response that appropriately completes the request.\n\n' +
        `### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`
    : 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
        `### Instruction:\n${instruction}\n\n### Response:\n`;
}

/** Pairs of (prompt, completion) column names recognised as prompt-completion data, in order of preference. */
const PAIRS: [string, string][] = [
  ['prompt', 'completion'],
  ['prompt', 'response'],
  ['query', 'response'],
  ['question', 'answer'],
  ['context', 'continuation'],
  ['input', 'output'],
  ['source', 'target'],
];

/** What each format needs, for the "no format fits" message. */
export const EXPECTED_COLUMNS =
  'instruction + output (+ input); prompt + completion (or query/response, question/answer, context/continuation, input/output); ' +
  'messages (chat); text; query + choices + gold; context_options + continuation + gold; ctx + endings + label; ' +
  'question + options/choices + answer; QUESTION + CONTEXTS + final_decision; sentence/text + label; input_ids';

export function detectFormat(columns: string[]): Detected | null {
  const has = (c: string) => columns.includes(c);
  const first = (...names: string[]) => names.find(has);
  const found = (...cs: (string | undefined)[]) => `columns ${cs.filter(Boolean).join(', ')}`;

  if (has('input_ids')) {
    const lossMask = first('loss_mask');
    const labels = first('labels');
    return { format: 'pretokenized', schema: null, mapping: { inputIds: 'input_ids', lossMask, labels }, because: found('input_ids', lossMask, labels) };
  }
  const messages = first('messages', 'conversations', 'conversation');
  if (messages) return { format: 'chat', schema: null, mapping: { messages }, because: found(messages) };
  const output = first('output', 'response');
  if (has('instruction') && output) {
    const input = first('input', 'context');
    return { format: 'instruction', schema: null, mapping: { instruction: 'instruction', input, output }, because: found('instruction', input, output) };
  }
  const mc = (schema: MultipleChoiceSchema, mapping: ColumnMapping, ...cs: string[]): Detected => ({
    format: 'multiple-choice',
    schema,
    mapping,
    because: found(...cs),
  });
  if (has('query') && has('choices') && has('gold')) return mc('mosaicml', { question: 'query', choices: 'choices', answer: 'gold' }, 'query', 'choices', 'gold');
  if (has('context_options') && has('continuation') && has('gold'))
    return mc('winogrande', { context: 'context_options', completion: 'continuation', answer: 'gold' }, 'context_options', 'continuation', 'gold');
  if (has('sentence') && has('option1') && has('option2') && has('answer'))
    return mc('winogrande', { question: 'sentence', choices: 'option1,option2', answer: 'answer' }, 'sentence', 'option1', 'option2', 'answer');
  if (has('endings') && has('label') && (has('ctx') || has('ctx_a')))
    return mc('hellaswag', { question: has('ctx_a') ? 'ctx_a' : 'ctx', choices: 'endings', answer: 'label' }, 'ctx', 'endings', 'label');
  if (has('QUESTION') && has('CONTEXTS') && has('final_decision'))
    return mc('pubmedqa', { question: 'QUESTION', context: 'CONTEXTS', answer: 'final_decision' }, 'QUESTION', 'CONTEXTS', 'final_decision');
  const question = first('question', 'query');
  const choices = first('options', 'choices');
  const answer = first('answer', 'answerKey', 'answer_idx', 'label', 'gold', 'cop');
  if (question && choices && answer) return mc('question', { question, choices, answer }, question, choices, answer);
  if (question && has('opa') && has('opb') && has('cop'))
    return mc('question', { question, choices: ['opa', 'opb', 'opc', 'opd', 'ope'].filter(has).join(','), answer: 'cop' }, question, 'opa…', 'cop');
  const sentence = first('sentence', 'text');
  const label = first('label', 'sentiment');
  if (sentence && label) return mc('classification', { text: sentence, answer: label }, sentence, label);
  for (const [p, c] of PAIRS) {
    if (has(p) && has(c)) return { format: 'prompt-completion', schema: null, mapping: { prompt: p, completion: c }, because: found(p, c) };
  }
  const text = first('text', 'content', 'document');
  if (text) return { format: 'text', schema: null, mapping: { text }, because: found(text) };
  return null;
}

/** Default roles when the person picks a format the columns do not suggest; their own mapping goes over these. */
export function defaultMapping(format: DatasetFormat, columns: string[]): ColumnMapping {
  const pick = (...names: string[]) => names.find((n) => columns.includes(n));
  switch (format) {
    case 'instruction':
      return { instruction: pick('instruction', 'prompt'), input: pick('input', 'context'), output: pick('output', 'response', 'answer') };
    case 'prompt-completion': {
      const pair = PAIRS.find(([p, c]) => columns.includes(p) && columns.includes(c));
      return pair ? { prompt: pair[0], completion: pair[1] } : { prompt: pick('prompt', 'question', 'query'), completion: pick('completion', 'answer', 'response') };
    }
    case 'chat':
      return { messages: pick('messages', 'conversations', 'conversation') };
    case 'text':
      return { text: pick('text', 'content', 'document', 'sentence') };
    case 'pretokenized':
      return { inputIds: pick('input_ids'), lossMask: pick('loss_mask'), labels: pick('labels') };
    case 'multiple-choice':
      return {
        question: pick('question', 'query', 'sentence', 'text'),
        choices: pick('choices', 'options', 'endings'),
        answer: pick('answer', 'label', 'gold', 'answerKey', 'cop'),
      };
  }
}

/** The columns a format needs to have mapped (the rest are optional). */
export function requiredRoles(format: DatasetFormat, schema: MultipleChoiceSchema | null): (keyof ColumnMapping)[] {
  switch (format) {
    case 'instruction':
      return ['instruction', 'output'];
    case 'prompt-completion':
      return ['prompt', 'completion'];
    case 'chat':
      return ['messages'];
    case 'text':
      return ['text'];
    case 'pretokenized':
      return ['inputIds'];
    case 'multiple-choice':
      if (schema === 'classification') return ['text', 'answer'];
      if (schema === 'question') return ['question', 'choices', 'answer'];
      return [];
  }
}

const ROLE_NAMES: Record<string, string> = { user: 'user', human: 'user', system: 'system', assistant: 'assistant', gpt: 'assistant', bot: 'assistant', model: 'assistant' };

function toMessages(v: unknown, column: string): ChatMessage[] | string {
  if (!Array.isArray(v)) return `${column} is ${v === undefined ? 'missing' : 'not a list of messages'}`;
  const out: ChatMessage[] = [];
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null) return `${column}[${i}] is not a message object`;
    const rawRole = asText(m.role ?? m.from);
    const content = asText(m.content ?? m.value);
    if (rawRole === null) return `${column}[${i}] has no role (or "from")`;
    if (content === null) return `${column}[${i}] has no text content (or "value")`;
    const role = ROLE_NAMES[rawRole.toLowerCase()];
    if (!role) return `${column}[${i}] has role ${JSON.stringify(rawRole)}; expected system, user or assistant`;
    out.push({ role, content });
  }
  if (!out.some((m) => m.role === 'assistant' && m.content.trim() !== '')) return 'the conversation has no assistant message to train on';
  return out;
}

function intList(v: unknown, what: string): number[] | string {
  if (!Array.isArray(v)) return `${what} is ${v === undefined ? 'missing' : 'not a list of token ids'}`;
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'number' || !Number.isInteger(v[i])) return `${what}[${i}] = ${JSON.stringify(v[i])} is not an integer`;
  }
  return v as number[];
}

function fromTokens(rec: Record<string, unknown>, line: number, m: ColumnMapping): Converted {
  const ids = intList(rec[m.inputIds!], m.inputIds!);
  if (typeof ids === 'string') return ids;
  if (ids.length < 2) return `${m.inputIds} has ${ids.length} token${ids.length === 1 ? '' : 's'}; at least 2 are needed to train on`;
  const negative = ids.findIndex((id) => id < 0);
  if (negative >= 0) return `${m.inputIds}[${negative}] = ${ids[negative]} is negative`;
  let lossMask: number[] | null = null;
  if (m.lossMask && rec[m.lossMask] !== undefined && rec[m.lossMask] !== null) {
    const mask = intList(rec[m.lossMask], m.lossMask);
    if (typeof mask === 'string') return mask;
    if (mask.length !== ids.length) return `${m.lossMask} has ${mask.length} entries but ${m.inputIds} has ${ids.length}`;
    if (mask.some((x) => x !== 0 && x !== 1)) return `${m.lossMask} holds values other than 0 and 1`;
    lossMask = mask;
  } else if (m.labels && rec[m.labels] !== undefined && rec[m.labels] !== null) {
    const labels = intList(rec[m.labels], m.labels);
    if (typeof labels === 'string') return labels;
    if (labels.length !== ids.length) return `${m.labels} has ${labels.length} entries but ${m.inputIds} has ${ids.length}`;
    // Hugging Face labels are the input ids with -100 where there is no loss (the model shifts them itself).
    const differs = labels.findIndex((l, t) => l !== -100 && l !== ids[t]);
    if (differs >= 0) return `${m.labels}[${differs}] = ${labels[differs]} is neither -100 nor the input id ${ids[differs]} (only -100 masking is supported)`;
    lossMask = labels.map((l) => (l === -100 ? 0 : 1));
  }
  if (lossMask && !lossMask.slice(1).some((x) => x === 1)) return 'the loss mask selects no token to train on';
  return { kind: 'tokens', line, inputIds: ids, lossMask };
}

/** The template a file is read with: parsed, and whether it is the format's default (Alpaca's no-input variant). */
export interface TemplateInForce {
  parsed: ParsedTemplate;
  isDefault: boolean;
}

/** What a person calls a column in a rejection reason: "the prompt (question)". */
const ROLE_WORDS: Partial<Record<keyof ColumnMapping, string>> = {
  instruction: 'instruction',
  input: 'input',
  output: 'output',
  prompt: 'prompt',
  completion: 'completion',
  text: 'text',
  answer: 'label',
};

function roleNamer(m: ColumnMapping): (column: string) => string {
  const roles = new Map<string, string>();
  for (const [role, word] of Object.entries(ROLE_WORDS)) {
    const column = m[role as keyof ColumnMapping];
    if (column && !roles.has(column)) roles.set(column, word);
  }
  return (column) => roles.get(column) ?? 'column';
}

/** One function per row for the format; classification needs the file's label set first. */
export function rowConverter(format: DatasetFormat, schema: MultipleChoiceSchema | null, m: ColumnMapping, records: SourceRecord[], template: TemplateInForce | null = null) {
  const text = (rec: Record<string, unknown>, col: string | undefined) => (col ? asText(rec[col]) : null);
  const roleOf = roleNamer(m);
  const required = [m.instruction, m.prompt, m.text].filter((c): c is string => c !== undefined);
  switch (format) {
    case 'instruction':
      if (!template) throw new Error('the instruction format is read through a template');
      return (rec: Record<string, unknown>, line: number): Converted => {
        const r = renderRow(template.parsed, rec, { required, roleOf });
        if (typeof r === 'string') return r;
        // The default is stanford_alpaca's prompt, whose no-input variant serves rows with an empty input.
        const prompt = template.isDefault ? alpacaPrompt(text(rec, m.instruction) ?? '', text(rec, m.input) ?? '') : r.prompt;
        return { kind: 'text', line, prompt, target: r.target };
      };
    case 'prompt-completion':
      if (!template) throw new Error('the prompt-completion format is read through a template');
      return (rec: Record<string, unknown>, line: number): Converted => {
        const r = renderRow(template.parsed, rec, { required, roleOf });
        if (typeof r === 'string') return r;
        const mc = lettersInPrompt(r.prompt, r.target, line) ?? undefined;
        return { kind: 'text', line, prompt: r.prompt, target: r.target, mc };
      };
    case 'text':
      return (rec: Record<string, unknown>, line: number): Converted => {
        const t = text(rec, m.text);
        if (!t || t.trim() === '') return `the text (${m.text}) is empty`;
        return { kind: 'text', line, prompt: '', target: t };
      };
    case 'chat':
      return (rec: Record<string, unknown>, line: number): Converted => {
        const messages = toMessages(rec[m.messages!], m.messages!);
        return typeof messages === 'string' ? messages : { kind: 'chat', line, messages };
      };
    case 'pretokenized':
      return (rec: Record<string, unknown>, line: number) => fromTokens(rec, line, m);
    case 'multiple-choice':
      switch (schema) {
        case 'mosaicml':
          return fromMosaicml;
        case 'winogrande':
          return fromWinogrande;
        case 'hellaswag':
          return fromHellaswag;
        case 'pubmedqa':
          return fromPubmedqa;
        case 'classification': {
          if (!template) throw new Error('classification is read through a template');
          const labels = labelSet(records.map((r) => asText(r.value[m.answer!])?.trim() ?? '').filter(Boolean));
          const values = { [CHOICES_PLACEHOLDER]: labelList(labels) };
          const label = template.parsed.target;
          return (rec: Record<string, unknown>, line: number): Converted => {
            const given = asText(rec[label])?.trim() ?? '';
            if (given === '' && (asText(rec[m.text!])?.trim() ?? '') !== '') return `the label (${label}) is missing`;
            const r = renderRow(template.parsed, rec, { required, roleOf, values });
            return typeof r === 'string' ? r : classificationExample(line, r.prompt, given, template.parsed.after, labels, label);
          };
        }
        default:
          return (rec: Record<string, unknown>, line: number) => fromQuestion(rec, line, { question: m.question!, choices: m.choices!, answer: m.answer! });
      }
  }
}
