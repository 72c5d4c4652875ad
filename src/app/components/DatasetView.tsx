import { useId, useState } from 'react';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ColumnMapping, DatasetFormat } from '../../data';
import type { DatasetInfo } from '../../worker/protocol';
import { setDatasetOptions } from '../actions/dataset';
import { formatBytes, formatExact } from '../../format';
import { Stat } from './Stat';
import { TemplateParts } from './TemplateView';
import { escapeTemplate, unescapeTemplate } from '../../data/template';

const FORMATS: { value: DatasetFormat; label: string }[] = [
  { value: 'multiple-choice', label: 'Multiple choice' },
  { value: 'instruction', label: 'Instruction (Alpaca)' },
  { value: 'prompt-completion', label: 'Prompt + completion' },
  { value: 'chat', label: 'Chat messages' },
  { value: 'text', label: 'Plain text' },
  { value: 'pretokenized', label: 'Token ids' },
];

/** The column roles a person may map for each format. */
const ROLES: Record<DatasetFormat, (keyof ColumnMapping)[]> = {
  'multiple-choice': ['question', 'choices', 'answer'],
  instruction: ['instruction', 'input', 'output'],
  'prompt-completion': ['prompt', 'completion'],
  chat: ['messages'],
  text: ['text'],
  pretokenized: ['inputIds', 'lossMask', 'labels'],
};

/** A dataset as read: its format and columns (to change), counts, the first examples as tokens, lengths, rejected rows. */
export function DatasetView({ info, busy }: { info: DatasetInfo; busy: boolean }) {
  return (
    <div className="dataset-view" data-testid="dataset-view">
      <p>
        <code>{info.fileName}</code> ({formatBytes(info.bytes)}): read as <strong data-testid="dataset-format" data-value={info.format}>{info.format}</strong>
        {info.multipleChoiceSchema && <span className="muted"> ({info.multipleChoiceSchema})</span>}, <span className="muted">{info.detectedFrom}</span>.
      </p>
      <FormatControls key={`${info.fileName}|${info.format}|${info.template}|${info.appendEos}`} info={info} busy={busy} />
      <dl className="facts-columns dataset-counts">
        <Stat label="Rows in the file" testId="dataset-rows" value={info.totalRows} />
        <Stat label="Usable examples" testId="dataset-examples" value={info.examples} />
        <Stat label="Rejected rows" testId="dataset-rejected" value={info.rejectedCount} />
        <Stat label="Train" testId="dataset-train" value={info.train} />
        <Stat label="Held out" testId="dataset-heldout" value={info.heldOut} />
        <Stat label="Target tokens" testId="dataset-target-tokens" value={info.preview.stats.targetTokens} />
        <Stat label="Longest (tokens)" testId="dataset-max-length" value={info.preview.stats.maxLength} />
        <Stat label="Truncated" testId="dataset-truncated" value={info.preview.stats.truncatedPrompt + info.preview.stats.truncatedTarget} />
      </dl>
      <div className="dataset-grid">
        <TokenPreview info={info} />
        <LengthHistogram info={info} />
      </div>
      <Rejected info={info} />
    </div>
  );
}

function FormatControls({ info, busy }: { info: DatasetInfo; busy: boolean }) {
  const formatId = useId();
  const [format, setFormat] = useState<DatasetFormat>(info.format);
  const [mapping, setMapping] = useState<ColumnMapping>(info.mapping);
  const [heldOut, setHeldOut] = useState(Math.round((info.options.heldOut < 1 ? info.options.heldOut : 0.1) * 100));
  const [template, setTemplate] = useState(escapeTemplate(info.template ?? ''));
  const [eos, setEos] = useState(info.appendEos);
  const roles = ROLES[format];
  const sameFormat = format === info.format;
  // A template belongs to a format and its columns: another format starts from its own default.
  const templateToSend = () => {
    if (!sameFormat || info.template === null) return undefined;
    const typed = unescapeTemplate(template);
    return typed === info.template && info.templateIsDefault ? undefined : typed;
  };
  const apply = (opts: { defaultTemplate?: boolean } = {}) =>
    void setDatasetOptions({
      format,
      columns: Object.fromEntries(roles.filter((r) => mapping[r]).map((r) => [r, mapping[r]])) as ColumnMapping,
      multipleChoiceSchema: sameFormat && format === 'multiple-choice' && info.multipleChoiceSchema ? info.multipleChoiceSchema : undefined,
      template: opts.defaultTemplate ? undefined : templateToSend(),
      appendEos: eos === info.appendEos ? info.options.appendEos : eos,
      heldOut: heldOut / 100,
    });
  return (
    <fieldset className="format-controls" disabled={busy}>
      <legend>Format and columns</legend>
      <div className="control-row">
        <label className="inline-label" htmlFor={formatId}>
          Format
          <select id={formatId} data-testid="format-select" value={format} onChange={(e) => setFormat(e.currentTarget.value as DatasetFormat)}>
            {FORMATS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        </label>
        {roles.map((role) => (
          <label key={role} className="inline-label">
            {role}
            <select
              data-testid={`column-${role}`}
              value={mapping[role] ?? ''}
              onChange={(e) => setMapping({ ...mapping, [role]: e.currentTarget.value || undefined })}
            >
              <option value="">(none)</option>
              {info.columns.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </label>
        ))}
        <label className="inline-label">
          Held out %
          <input type="number" min={0} max={90} step={1} data-testid="heldout-input" value={heldOut} onChange={(e) => setHeldOut(Number(e.currentTarget.value))} />
        </label>
        <button type="button" data-testid="format-apply" onClick={() => apply()}>
          Read again
        </button>
      </div>
      {info.template !== null && sameFormat ? (
        <div className="control-row template-row">
          <label className="inline-label template-label">
            Prompt template{info.templateIsDefault ? ' (default)' : ''}
            <input
              type="text"
              className="template-input"
              data-testid="template-input"
              spellCheck={false}
              value={template}
              onChange={(e) => setTemplate(e.currentTarget.value)}
              title="{column} placeholders; the last one is the target (trained on); \n is a newline"
            />
          </label>
          {!info.templateIsDefault && (
            <button type="button" className="button-secondary" data-testid="template-default" onClick={() => apply({ defaultTemplate: true })}>
              Use the default
            </button>
          )}
          <TemplateParts template={info.template} columns={info.columns} />
        </div>
      ) : (
        <p className="muted small" data-testid="template-fixed">
          {info.template === null ? fixedLayout(info) : 'Read again to see the template of the chosen format.'}
        </p>
      )}
      <div className="control-row">
        <label className="inline-label">
          <input type="checkbox" data-testid="eos-checkbox" checked={eos} onChange={(e) => setEos(e.currentTarget.checked)} />
          End each target with the end-of-sequence token (trained on, and counted in the held-out loss)
        </label>
        <span className="muted small" data-testid="eos-state" data-value={info.appendEos}>
          now {info.appendEos ? 'on' : 'off'}
          {info.options.appendEos === undefined ? ` (the default for ${info.multipleChoiceSchema === 'classification' ? 'classification labels' : 'this data'})` : ' (set by you)'}
        </span>
      </div>
    </fieldset>
  );
}

/** Why a format has no template to edit. */
function fixedLayout(info: DatasetInfo): string {
  if (info.format === 'chat') return "Layout: the tokenizer's chat_template (tokenizer_config.json), or the plain \"User: …\\nAssistant: …\" when it has none.";
  if (info.format === 'multiple-choice') return `Layout: lm-evaluation-harness's ${info.multipleChoiceSchema ?? ''} prompt (fixed, so that accuracy compares with published numbers).`;
  if (info.format === 'text') return 'Layout: the text itself, every token trained on.';
  return 'Layout: the token ids as given.';
}

function TokenPreview({ info }: { info: DatasetInfo }) {
  return (
    <div className="token-preview" data-testid="token-preview">
      <h3>First examples, as the model sees them</h3>
      <p className="small legend">
        <span className="token token-prompt">prompt</span> is read only; <span className="token token-target">target</span> is trained on.
      </p>
      {info.preview.rows.map((row) => (
        <div key={row.line} className="token-row" data-testid="preview-row">
          <span className="token-where muted">{row.where}{row.truncated ? ' (truncated)' : ''}</span>
          <p className="tokens">
            {row.tokens.map((t, i) => (
              <span key={i} className={`token ${t.target ? 'token-target' : 'token-prompt'}`} title={`id ${t.id}${t.target ? ', trained on' : ''}`} data-target={t.target}>
                {t.text.replace(/\n/g, '⏎')}
              </span>
            ))}
          </p>
        </div>
      ))}
    </div>
  );
}

function LengthHistogram({ info }: { info: DatasetInfo }) {
  const { edges, counts } = info.preview.histogram;
  const data = counts.map((count, i) => ({ bin: `${edges[i]}–${edges[i + 1] - 1}`, count }));
  return (
    <div className="histogram" data-testid="length-histogram">
      <h3>Token lengths</h3>
      <ResponsiveContainer width="100%" height={180}>
        <BarChart data={data} margin={{ top: 4, right: 8, bottom: 16, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="bin" tick={{ fontSize: 10 }} interval="preserveStartEnd" label={{ value: 'tokens per example', position: 'insideBottom', offset: -8, fontSize: 11 }} />
          <YAxis allowDecimals={false} tick={{ fontSize: 10 }} width={32} />
          <Tooltip />
          <Bar dataKey="count" fill="#3b528b" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

function Rejected({ info }: { info: DatasetInfo }) {
  if (info.rejectedCount === 0) return <p className="muted small" data-testid="rejected-none">No row was rejected.</p>;
  return (
    <details className="rejected" data-testid="rejected-rows">
      <summary>
        {formatExact(info.rejectedCount)} rejected row{info.rejectedCount === 1 ? '' : 's'}, with reasons
      </summary>
      <ul>
        {info.rejected.map((r) => (
          <li key={`${r.line}-${r.reason}`}>
            <strong>{r.where}</strong>: {r.reason}
          </li>
        ))}
      </ul>
      {info.rejectedCount > info.rejected.length && <p className="muted small">The first {info.rejected.length} are listed.</p>}
    </details>
  );
}
