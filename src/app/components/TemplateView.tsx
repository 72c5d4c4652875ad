import { parseTemplate, type ParsedTemplate } from '../../data/template';

/** How a separator reads on screen: a newline as ⏎, a space as ␣, a tab as ⇥ (nothing: "none"). */
export const visibleSeparator = (s: string): string => (s === '' ? 'none' : s.replace(/\n/g, '⏎').replace(/ /g, '␣').replace(/\t/g, '⇥'));

function parsedOrNull(template: string, columns: string[]): ParsedTemplate | null {
  try {
    return parseTemplate(template, columns, ['choices']);
  } catch {
    return null;
  }
}

/** The template in force, as parts: prompt (read only), the separator, and the target column (trained on). */
export function TemplateParts({ template, columns }: { template: string; columns: string[] }) {
  const t = parsedOrNull(template, columns);
  if (!t) return null;
  const prompt = t.prompt.slice(0, t.separator && t.prompt.length > 0 ? -1 : undefined);
  return (
    <p className="template-parts small" data-testid="template-parts">
      <span className="token token-prompt" title="the prompt: read, not trained on">
        {prompt.map((p, i) => ('column' in p ? <strong key={i}>{`{${p.column}}`}</strong> : <span key={i}>{p.text.replace(/\n/g, '⏎')}</span>))}
      </span>
      <span className="token template-separator" title="the separator between prompt and answer" data-testid="template-separator" data-value={t.separator}>
        separator: {visibleSeparator(t.separator)}
      </span>
      <span className="token token-target" title="the target: trained on">
        <strong>{`{${t.target}}`}</strong>
        {t.after.replace(/\n/g, '⏎')}
      </span>
    </p>
  );
}
