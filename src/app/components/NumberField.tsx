/**
 * A labelled number input that reports only finite values (an emptied box changes nothing); `help` explains the
 * setting as a tooltip and as the input's description for screen readers.
 */
export function NumberField({ label, id, value, min, max, step, disabled, help, onChange }: { label: string; id: string; value: number; min: number; max?: number; step?: number; disabled?: boolean; help?: string; onChange: (v: number) => void }) {
  const helpId = help ? `${id}-help` : undefined;
  return (
    <label className="field" title={help}>
      <span>{label}</span>
      <input
        type="number"
        data-testid={id}
        value={value}
        min={min}
        max={max}
        step={step ?? 1}
        disabled={disabled}
        aria-describedby={helpId}
        onChange={(e) => {
          const v = Number(e.currentTarget.value);
          if (Number.isFinite(v) && e.currentTarget.value !== '') onChange(v);
        }}
      />
      {help && (
        <span id={helpId} className="visually-hidden" data-testid={helpId}>
          {help}
        </span>
      )}
    </label>
  );
}
