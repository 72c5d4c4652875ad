/** A labelled number input that reports only finite values (an emptied box changes nothing). */
export function NumberField({ label, id, value, min, max, step, disabled, onChange }: { label: string; id: string; value: number; min: number; max?: number; step?: number; disabled?: boolean; onChange: (v: number) => void }) {
  return (
    <label className="field">
      <span>{label}</span>
      <input
        type="number"
        data-testid={id}
        value={value}
        min={min}
        max={max}
        step={step ?? 1}
        disabled={disabled}
        onChange={(e) => {
          const v = Number(e.currentTarget.value);
          if (Number.isFinite(v) && e.currentTarget.value !== '') onChange(v);
        }}
      />
    </label>
  );
}
