// Multiple-choice rows → a training example (prompt = the question as lm-evaluation-harness formats it, target = the
// correct continuation) plus the MultipleChoiceItem the evaluation scores by log-likelihood.
// The prompts follow lm-evaluation-harness's task definitions (arc, piqa, hellaswag, winogrande, medmcqa, pubmedqa);
// continuations start with one space (its target_delimiter).
import type { Example, MultipleChoiceItem } from './types';

/** A row converted, or the reason it cannot be used. */
export type Converted = Example | string;

export const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function asText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

const withDelimiter = (s: string) => (/^\s/.test(s) ? s : ` ${s}`);

function mcExample(line: number, context: string, choices: string[], gold: number, continuations: string[], target: string): Example {
  const mc: MultipleChoiceItem = {
    line,
    context,
    choices,
    gold,
    requests: continuations.map((continuation) => ({ context, continuation })),
    partial: false,
  };
  return { kind: 'text', line, prompt: context, target, mc };
}

function goldIndex(v: unknown, n: number, what: string): number | string {
  const raw = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof raw !== 'number' || !Number.isInteger(raw)) return `${what} ${JSON.stringify(v)} is not a choice index`;
  if (raw < 0 || raw >= n) return `${what} ${raw} is out of range for ${n} choices (indices 0..${n - 1})`;
  return raw;
}

function stringList(v: unknown, what: string): string[] | string {
  if (!Array.isArray(v)) return `${what} is ${v === undefined ? 'missing' : 'not a list'}`;
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const s = asText(v[i]);
    if (s === null || s.trim() === '') return `${what}[${i}] is empty`;
    out.push(s);
  }
  if (out.length < 2) return `${what} has ${out.length} entr${out.length === 1 ? 'y' : 'ies'}; a multiple-choice row needs at least 2`;
  return out;
}

function nonEmpty(v: unknown): string {
  const s = asText(v);
  return s !== null && s.trim() !== '' ? s : '';
}

/** llm-foundry ICL rows: { query, choices[], gold } (ARC, PIQA, HellaSwag small). */
export function fromMosaicml(rec: Record<string, unknown>, line: number): Converted {
  const query = nonEmpty(rec.query);
  if (!query) return 'the query is empty';
  const choices = stringList(rec.choices, 'choices');
  if (typeof choices === 'string') return choices;
  const gold = goldIndex(rec.gold, choices.length, 'gold');
  if (typeof gold === 'string') return gold;
  // lm-eval's ARC and PIQA prompt is "Question: …\nAnswer:"; llm-foundry stores only the "Question: …" part.
  const context = /^\s*Question:/.test(query) && !/Answer:\s*$/.test(query) ? `${query.trimEnd()}\nAnswer:` : query.trimEnd();
  const continuations = choices.map(withDelimiter);
  return mcExample(line, context, choices, gold, continuations, continuations[gold]);
}

function commonWordPrefix(strings: string[]): string {
  let n = 0;
  while (strings.every((s) => n < s.length && s[n] === strings[0][n])) n++;
  const prefix = strings[0].slice(0, n);
  const cut = prefix.lastIndexOf(' ');
  return n === strings[0].length && strings.every((s) => s.length === n) ? prefix : prefix.slice(0, cut + 1);
}

function winograndeItem(line: number, contexts: string[], continuationText: string, gold: number): Example {
  const continuation = ` ${continuationText.trim()}`;
  const shared = commonWordPrefix(contexts);
  const mc: MultipleChoiceItem = {
    line,
    context: shared,
    choices: contexts.map((c) => c.slice(shared.length)),
    gold,
    requests: contexts.map((context) => ({ context, continuation })),
    partial: true,
  };
  // Train on the sentence with the right option filled in, loss on the shared ending (what the scorer compares).
  return { kind: 'text', line, prompt: contexts[gold], target: continuation, mc };
}

/** WinoGrande, llm-foundry layout { context_options[], continuation, gold } or original { sentence, option1, option2, answer }. */
export function fromWinogrande(rec: Record<string, unknown>, line: number): Converted {
  if (rec.context_options !== undefined) {
    const contexts = stringList(rec.context_options, 'context_options');
    if (typeof contexts === 'string') return contexts;
    const continuation = nonEmpty(rec.continuation);
    if (!continuation) return 'the continuation is empty';
    const gold = goldIndex(rec.gold, contexts.length, 'gold');
    if (typeof gold === 'string') return gold;
    return winograndeItem(line, contexts, continuation, gold);
  }
  const sentence = nonEmpty(rec.sentence);
  if (!sentence) return 'the sentence is empty';
  const blank = sentence.indexOf('_');
  if (blank < 0) return 'the sentence has no "_" blank to fill';
  const options = [nonEmpty(rec.option1), nonEmpty(rec.option2)];
  if (!options[0] || !options[1]) return 'option1 or option2 is empty';
  const answer = asText(rec.answer)?.trim();
  if (answer !== '1' && answer !== '2') return `answer ${JSON.stringify(rec.answer ?? null)} is not 1 or 2`;
  const contexts = options.map((o) => sentence.slice(0, blank) + o);
  return winograndeItem(line, contexts, sentence.slice(blank + 1), Number(answer) - 1);
}

/** Python's str.capitalize(): first character upper case, the rest lower case. */
const capitalize = (s: string) => (s.length === 0 ? s : s[0].toUpperCase() + s.slice(1).toLowerCase());

/** lm-evaluation-harness hellaswag preprocess(). */
function hellaswagClean(text: string): string {
  return text.trim().replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

/** HellaSwag, rowanz schema { activity_label, ctx_a, ctx_b (or ctx), endings[], label }. */
export function fromHellaswag(rec: Record<string, unknown>, line: number): Converted {
  const endings = stringList(rec.endings, 'endings');
  if (typeof endings === 'string') return endings;
  if (rec.label === undefined || rec.label === null || rec.label === '') return 'the label (correct ending) is missing';
  const gold = goldIndex(rec.label, endings.length, 'label');
  if (typeof gold === 'string') return gold;
  const ctxA = asText(rec.ctx_a);
  const ctxB = asText(rec.ctx_b);
  const ctx = ctxA !== null && ctxB !== null ? `${ctxA} ${capitalize(ctxB)}` : asText(rec.ctx);
  if (ctx === null || ctx.trim() === '') return 'the context (ctx) is empty';
  const activity = asText(rec.activity_label);
  const context = hellaswagClean(activity ? `${activity}: ${ctx}` : ctx);
  const choices = endings.map(hellaswagClean);
  const continuations = choices.map((c) => ` ${c}`);
  return mcExample(line, context, choices, gold, continuations, continuations[gold]);
}

export const PUBMEDQA_CHOICES = ['yes', 'no', 'maybe'];

/** PubMedQA ori_pqal.json { QUESTION, CONTEXTS[], final_decision } as lm-eval's pubmedqa task. */
export function fromPubmedqa(rec: Record<string, unknown>, line: number): Converted {
  const question = nonEmpty(rec.QUESTION);
  if (!question) return 'the QUESTION is empty';
  if (!Array.isArray(rec.CONTEXTS) || rec.CONTEXTS.length === 0) return 'CONTEXTS is missing or empty';
  const contexts = rec.CONTEXTS.map(asText);
  if (contexts.some((c) => c === null)) return 'CONTEXTS holds something other than text';
  const decision = asText(rec.final_decision)?.trim().toLowerCase() ?? '';
  if (!decision) return 'final_decision (the answer) is missing';
  const gold = PUBMEDQA_CHOICES.indexOf(decision);
  if (gold < 0) return `final_decision ${JSON.stringify(rec.final_decision)} is not yes, no or maybe`;
  const context = `Abstract: ${contexts.join('\n')}\nQuestion: ${question}\nAnswer:`;
  const continuations = PUBMEDQA_CHOICES.map((c) => ` ${c}`);
  return mcExample(line, context, PUBMEDQA_CHOICES, gold, continuations, continuations[gold]);
}

const LETTERED = /^\s*([A-Z])\s*[.):]\s*(.*)$/s;

/** Choices from an array, a {text[], label[]} object, lettered lines ("A. …\nB. …"), or several columns. */
function readChoices(rec: Record<string, unknown>, column: string): { texts: string[]; labels: string[] | null } | string {
  const columns = column.split(',').map((c) => c.trim()).filter(Boolean);
  if (columns.length > 1) {
    const texts = columns.map((c) => asText(rec[c]) ?? '');
    const empty = texts.findIndex((t) => t.trim() === '');
    if (empty >= 0) return `choice column ${columns[empty]} is empty`;
    return { texts, labels: null };
  }
  const v = rec[column];
  if (typeof v === 'string') {
    const lines = v.split('\n').filter((l) => l.trim() !== '');
    const parsed = lines.map((l) => LETTERED.exec(l));
    if (parsed.length < 2 || parsed.some((m) => m === null)) return `${column} is text but not lettered lines like "A. …\\nB. …"`;
    return { texts: parsed.map((m) => m![2].trim()), labels: parsed.map((m) => m![1]) };
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const texts = stringList(o.text, `${column}.text`);
    if (typeof texts === 'string') return texts;
    const labels = Array.isArray(o.label) && o.label.length === texts.length ? o.label.map((l) => asText(l) ?? '') : null;
    return { texts, labels };
  }
  const texts = stringList(v, column);
  return typeof texts === 'string' ? texts : { texts, labels: null };
}

/** The gold index from an index, a label/letter, "A. text", or the choice's own text. */
function resolveAnswer(answer: unknown, texts: string[], labels: string[] | null, column: string): number | string {
  if (answer === undefined || answer === null || (typeof answer === 'string' && answer.trim() === '')) return `the answer (${column}) is missing`;
  const n = texts.length;
  if (typeof answer === 'number') return goldIndex(answer, n, `answer index`);
  const a = asText(answer)?.trim();
  if (a === undefined) return `the answer (${column}) is not text or a number`;
  if (labels) {
    const i = labels.findIndex((l) => l.trim() === a);
    if (i >= 0) return i;
  }
  const lettered = LETTERED.exec(a);
  if (lettered && (lettered[2].trim() !== '' || a.length > 1)) {
    const i = (labels ?? [...LETTERS.slice(0, n)]).indexOf(lettered[1]);
    if (i < 0) return `answer ${JSON.stringify(a)} names option ${lettered[1]}, but there are only ${n} choices`;
    const said = lettered[2].trim();
    if (said && said !== texts[i].trim()) return `answer ${JSON.stringify(a)} does not match option ${lettered[1]} (${JSON.stringify(texts[i])})`;
    return i;
  }
  if (/^[A-Z]$/.test(a)) {
    const i = LETTERS.indexOf(a);
    return i < n ? i : `answer ${a} is out of range for ${n} choices (A..${LETTERS[n - 1]})`;
  }
  if (/^-?\d+$/.test(a)) return goldIndex(Number(a), n, 'answer index');
  const byText = texts.findIndex((t) => t.trim().toLowerCase() === a.toLowerCase());
  if (byText >= 0) return byText;
  return `answer ${JSON.stringify(a)} is not one of the choices`;
}

/**
 * A question, its choices and the answer (MedMCQA, HF ARC, any mapped file). Formatted as lm-eval's medmcqa task:
 * "Question: …\nChoices:\nA. …\nB. …\nAnswer:", scored on the letters; the training target is " A. <answer text>"
 * (the letter the scorer compares, followed by the answer's text).
 */
export function fromQuestion(rec: Record<string, unknown>, line: number, cols: { question: string; choices: string; answer: string }): Converted {
  const question = nonEmpty(rec[cols.question]);
  if (!question) return `the question (${cols.question}) is empty`;
  const choices = readChoices(rec, cols.choices);
  if (typeof choices === 'string') return choices;
  if (choices.texts.length > LETTERS.length) return `${choices.texts.length} choices is more than ${LETTERS.length}`;
  const gold = resolveAnswer(rec[cols.answer], choices.texts, choices.labels, cols.answer);
  if (typeof gold === 'string') return gold;
  const letters = choices.texts.map((_, i) => LETTERS[i]);
  const context = `Question: ${question.trim()}\nChoices:\n${choices.texts.map((t, i) => `${letters[i]}. ${t.trim()}`).join('\n')}\nAnswer:`;
  return mcExample(
    line,
    context,
    choices.texts,
    gold,
    letters.map((l) => ` ${l}`),
    ` ${letters[gold]}. ${choices.texts[gold].trim()}`,
  );
}

/** The label set of a classification file: sorted (numerically when every label is a number). */
export function labelSet(values: string[]): string[] {
  const set = [...new Set(values)];
  return set.every((v) => /^-?\d+$/.test(v)) ? set.sort((a, b) => Number(a) - Number(b)) : set.sort();
}

/**
 * A text and its label (financial sentiment and other classification files), through the file's prompt template
 * (template.ts; by default "Sentence: …\nQuestion: What is the sentiment of this sentence: negative, neutral or
 * positive?\nAnswer: {label}"). The choices are the file's labels; the spaces that end the prompt are the
 * continuations' delimiter, as lm-evaluation-harness's target_delimiter: context "…Answer:", continuation " positive".
 */
export function classificationExample(line: number, prompt: string, label: string, after: string, labels: string[], column: string): Converted {
  const gold = labels.indexOf(label.trim());
  if (gold < 0) return `the label (${column}) ${JSON.stringify(label.trim())} is not one of ${labels.join(', ')}`;
  const spaces = / +$/.exec(prompt)?.[0] ?? '';
  const context = prompt.slice(0, prompt.length - spaces.length);
  const continuations = labels.map((l) => `${spaces}${l}${after}`);
  return mcExample(line, context, labels, gold, continuations, continuations[gold]);
}

/**
 * A prompt that ends with lettered options and "Answer:" (llm-foundry's PubMedQA jsonl) and a completion equal to one
 * option's text: the item the scorer can use. Null when the prompt does not look like that.
 */
export function lettersInPrompt(prompt: string, completion: string, line: number): MultipleChoiceItem | null {
  const m = /\n((?:[A-Z]\. [^\n]*\n)+)Answer:( *)$/.exec(prompt);
  if (!m) return null;
  const options = m[1].trimEnd().split('\n').map((l) => l.slice(3));
  const gold = options.findIndex((o) => o.trim() === completion.trim());
  if (gold < 0) return null;
  const context = prompt.slice(0, prompt.length - m[2].length);
  const delimiter = m[2] + (/^\s+/.exec(completion)?.[0] ?? '') || ' ';
  return {
    line,
    context,
    choices: options,
    gold,
    requests: options.map((o) => ({ context, continuation: delimiter + o.trim() })),
    partial: false,
  };
}
