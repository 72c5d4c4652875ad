// readDataset: a dropped file → a Dataset of examples (format detected or set), every unusable row listed with why.
import { GradPruneError } from '../errors';
import { asText, labelSet } from './multiple-choice';
import { EXPECTED_COLUMNS, defaultMapping, detectFormat, requiredRoles, rowConverter, type Detected, type TemplateInForce } from './formats';
import { CHOICES_PLACEHOLDER, defaultTemplate, parseTemplate } from './template';
import { readRecords, type SourceRecord } from './read';
import type { ColumnMapping, Dataset, Example, MultipleChoiceItem, ReadOptions, RejectedRow } from './types';

/** Classification files with more distinct labels than this are not treated as label columns. */
export const MAX_CLASSIFICATION_LABELS = 20;

function columnsOf(records: SourceRecord[]): string[] {
  const seen = new Set<string>();
  for (const r of records.slice(0, 1000)) for (const k of Object.keys(r.value)) seen.add(k);
  return [...seen];
}

/** The commonest reasons rows were rejected, each with its count and first row: "reason (n rows, first at line 3); …". */
export function summariseReasons(rejected: readonly RejectedRow[]): string {
  const counts = new Map<string, { n: number; where: string }>();
  for (const r of rejected) {
    const c = counts.get(r.reason);
    if (c) c.n++;
    else counts.set(r.reason, { n: 1, where: r.where });
  }
  return [...counts.entries()]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, 3)
    .map(([reason, { n, where }]) => `${reason} (${n} row${n === 1 ? '' : 's'}, first at ${where})`)
    .join('; ');
}

function resolveFormat(fileName: string, columns: string[], opts: ReadOptions): Detected {
  const detected = detectFormat(columns);
  // A template names its columns itself: on a file no format fits, it reads the file as prompt + completion.
  const format = opts.format ?? detected?.format ?? (opts.template !== undefined ? 'prompt-completion' : undefined);
  if (!format) {
    throw new GradPruneError('dataset', `${fileName}: no dataset format fits its columns (${columns.join(', ') || 'none'}). Expected one of: ${EXPECTED_COLUMNS}.`, {
      subject: fileName,
      hint:
        'Rename the columns, or give a prompt template naming them, the column to train on last ' +
        '(the studio: "Format and columns"; the command line: --template "{question}\\n{answer}").',
    });
  }
  const sameAsDetected = detected !== null && detected.format === format;
  const base: ColumnMapping = sameAsDetected ? detected.mapping : defaultMapping(format, columns);
  const mapping: ColumnMapping = { ...base, ...opts.columns, ...templateRoles(format, opts.template, columns, base) };
  // A built-in multiple-choice layout stays unless the person re-mapped its roles (then the generic layouts apply).
  const mcRoles = ['question', 'choices', 'answer', 'text', 'context'] as const;
  const remapped = mcRoles.some((r) => opts.columns?.[r] !== undefined && opts.columns[r] !== detected?.mapping[r]);
  let schema = format === 'multiple-choice' ? (opts.multipleChoiceSchema ?? (sameAsDetected && !remapped ? detected.schema : null)) : null;
  if (format === 'multiple-choice' && schema === null) {
    schema = mapping.choices && columns.includes(mapping.choices.split(',')[0].trim()) ? 'question' : 'classification';
  }
  if (schema === 'classification') mapping.text ??= mapping.question;
  const because = opts.format || opts.columns || detected === null ? 'set by you' : detected.because;
  return { format, schema, mapping, because };
}

/** The formats whose prompt a template writes: the role of the template's last placeholder (the target) and of its first. */
const TEMPLATE_ROLES: Partial<Record<string, { target: keyof ColumnMapping; prompt: keyof ColumnMapping }>> = {
  instruction: { target: 'output', prompt: 'instruction' },
  'prompt-completion': { target: 'completion', prompt: 'prompt' },
  'multiple-choice': { target: 'answer', prompt: 'text' },
};

/** A person's template maps the columns it names: its last placeholder is the target, its first the prompt (unless mapped). */
function templateRoles(format: string, template: string | undefined, columns: string[], base: ColumnMapping): ColumnMapping {
  const roles = TEMPLATE_ROLES[format];
  if (template === undefined || !roles) return {};
  const parsed = parseTemplate(template, columns, [CHOICES_PLACEHOLDER]);
  const prompts = parsed.columns.slice(0, -1);
  const prompt = base[roles.prompt] !== undefined && prompts.includes(base[roles.prompt]!) ? base[roles.prompt] : prompts[0];
  return { [roles.target]: parsed.target, ...(prompt !== undefined ? { [roles.prompt]: prompt } : {}) };
}

/** The template a file is read with: the person's, or the format's default (null where the layout is fixed). */
function templateInForce(fileName: string, d: Detected, columns: string[], labels: string[], given: string | undefined): TemplateInForce | null {
  const fallback = defaultTemplate(d.format, d.schema, d.mapping, labels);
  if (fallback === null) {
    if (given === undefined) return null;
    const layout = d.format === 'chat' ? "the tokenizer's chat_template (tokenizer_config.json)" : d.format === 'multiple-choice' ? `lm-evaluation-harness's ${d.schema} prompt` : 'the file itself';
    throw new GradPruneError('input', `${fileName}: the ${d.format}${d.schema ? ` (${d.schema})` : ''} format takes no prompt template; its layout is ${layout}.`, {
      subject: 'template',
      hint: 'Leave the template out, or read the file as prompt-completion or instruction data.',
    });
  }
  const source = given ?? fallback;
  const extra = d.schema === 'classification' ? [CHOICES_PLACEHOLDER] : [];
  return { parsed: parseTemplate(source, columns, extra), isDefault: source === fallback };
}

function checkColumns(fileName: string, columns: string[], d: Detected): void {
  for (const role of requiredRoles(d.format, d.schema)) {
    const named = d.mapping[role];
    const missing = named === undefined ? [] : named.split(',').map((c) => c.trim()).filter((c) => !columns.includes(c));
    if (named === undefined || missing.length > 0) {
      throw new GradPruneError(
        'dataset',
        `${fileName}: the ${d.format}${d.schema ? ` (${d.schema})` : ''} format needs a column for "${role}"` +
          (named === undefined ? '' : `, but ${missing.join(', ')} is not in the file`) +
          `. Columns found: ${columns.join(', ') || 'none'}.`,
        { subject: fileName, hint: `Map the "${role}" role to one of the file's columns (in the studio: "Format and columns"; on the command line, a --template naming the column), or rename the column.` },
      );
    }
  }
}

export async function readDataset(blob: Blob, fileName: string, opts: ReadOptions = {}): Promise<Dataset> {
  const source = await readRecords(blob, fileName);
  const rejected: RejectedRow[] = [...source.rejected];
  const columns = columnsOf(source.records);
  if (source.records.length === 0) {
    throw new GradPruneError(
      'dataset',
      `${fileName} has no usable row` + (rejected.length > 0 ? `: ${summariseReasons(rejected)}.` : ': the file holds no rows.'),
      { subject: fileName },
    );
  }
  const resolved = resolveFormat(fileName, columns, opts);
  checkColumns(fileName, columns, resolved);
  const { format, schema, mapping } = resolved;
  let labels: string[] = [];
  if (schema === 'classification') {
    labels = labelSet(source.records.map((r) => asText(r.value[mapping.answer!])?.trim() ?? '').filter(Boolean));
    if (labels.length > MAX_CLASSIFICATION_LABELS || labels.length < 2) {
      throw new GradPruneError(
        'dataset',
        `${fileName}: column "${mapping.answer}" has ${labels.length} distinct label${labels.length === 1 ? '' : 's'}, so it is not read as a classification label (2 to ${MAX_CLASSIFICATION_LABELS} expected).`,
        { subject: fileName, hint: 'Choose another format or map other columns.' },
      );
    }
  }
  const template = templateInForce(fileName, resolved, columns, labels, opts.template);
  const convert = rowConverter(format, schema, mapping, source.records, template);
  const examples: Example[] = [];
  for (const r of source.records) {
    const out = convert(r.value, r.line);
    if (typeof out === 'string') rejected.push({ line: r.line, where: r.where, reason: out });
    else examples.push(out);
  }
  rejected.sort((a, b) => a.line - b.line);
  if (examples.length === 0) {
    throw new GradPruneError(
      'dataset',
      `${fileName} has no usable row for the ${format} format (columns found: ${columns.join(', ')}; used: ${Object.entries(mapping)
        .filter(([, c]) => c)
        .map(([role, c]) => `${role}=${c}`)
        .join(', ')}): ${summariseReasons(rejected)}.`,
      { subject: fileName, hint: 'Fix the rows, or choose another format or prompt template (the template names the columns it reads).' },
    );
  }
  const multipleChoice: MultipleChoiceItem[] = [];
  for (const e of examples) if (e.kind === 'text' && e.mc) multipleChoice.push(e.mc);
  return {
    fileName,
    format,
    multipleChoiceSchema: schema,
    detectedFrom: resolved.because,
    columns,
    mapping,
    lineKind: source.lineKind,
    totalRows: source.records.length + source.rejected.length,
    examples,
    rejected,
    multipleChoice,
    template: template?.parsed.source ?? null,
    templateIsDefault: template?.isDefault ?? true,
    // Labels scored by log-likelihood end where the label ends; answers and texts learn to stop (EOS).
    appendEos: opts.appendEos ?? schema !== 'classification',
  };
}
