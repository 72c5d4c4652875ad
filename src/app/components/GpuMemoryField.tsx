import { parseByteSize } from '../../byte-size';
import { formatBytes } from '../../format';
import { updateSettings } from '../actions/score';
import { useDraft } from '../hooks';
import { useStudio } from '../store';

/** A limit as a person would type it back: whole GiB or MiB when it is one, else the number of bytes. */
export function byteSizeText(bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30}GiB`;
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}MiB`;
  return String(bytes);
}

/**
 * The session's GPU memory limit (the scoring settings' maxGpuMemory, used by every GPU job: scoring, Check,
 * generation, Recover): empty means what the adapter allows, shown beside it. Typed as 512MiB, 14GiB, 16GB or bytes;
 * applied on Enter or when the box loses focus. Over the limit the weights stream from host memory layer by layer.
 */
export function GpuMemoryField({ disabled, id = 'setting-max-gpu-memory' }: { disabled?: boolean; id?: string }) {
  const limit = useStudio((s) => s.settings.maxGpuMemory);
  const allowed = useStudio((s) => s.memory?.adapterBudget ?? null);
  const { text, setText, problem, setProblem } = useDraft(limit === null ? '' : byteSizeText(limit));
  const apply = () => {
    const t = text.trim();
    if (t === '') {
      setProblem(null);
      if (limit !== null) updateSettings({ maxGpuMemory: null });
      return;
    }
    try {
      const bytes = parseByteSize(t, 'The GPU memory limit');
      setProblem(null);
      if (bytes !== limit) updateSettings({ maxGpuMemory: bytes });
    } catch (e) {
      setProblem((e as Error).message);
    }
  };
  return (
    <div className="control-row">
      <label className="inline-label">
        <span>GPU memory limit</span>{' '}
        <input
          type="text"
          data-testid={id}
          value={text}
          disabled={disabled}
          size={10}
          placeholder={allowed !== null ? byteSizeText(allowed) : 'adapter'}
          onChange={(e) => setText(e.currentTarget.value)}
          onBlur={apply}
          onKeyDown={(e) => {
            if (e.key === 'Enter') apply();
          }}
        />
      </label>
      <span className="muted small" data-testid={`${id}-allowed`} data-value={allowed ?? ''}>
        {limit === null ? 'empty: ' : ''}what this GPU adapter allows{allowed !== null ? `: ${formatBytes(allowed)}` : ''}; above the limit the layers stream from host memory
      </span>
      {problem && (
        <span className="error-text small" role="alert" data-testid={`${id}-problem`}>
          {problem}
        </span>
      )}
    </div>
  );
}
