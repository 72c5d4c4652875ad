import type { ReactNode } from 'react';
import { formatBytes, formatCount, formatExact } from '../../format';

type Kind = 'int' | 'count' | 'bytes';

const SHOW: Record<Kind, (n: number) => string> = { int: formatExact, count: formatCount, bytes: formatBytes };
const EXACT: Record<Kind, (n: number) => string> = {
  int: formatExact,
  count: (n) => `${formatExact(n)} parameters`,
  bytes: (n) => `${formatExact(n)} bytes`,
};

/** One row of a facts list: the number for people, the exact value in `title` and `data-value` (for tests). */
export function Stat({ label, testId, value, kind = 'int', note }: { label: string; testId: string; value: number; kind?: Kind; note?: ReactNode }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd>
        <span data-testid={testId} data-value={value} title={EXACT[kind](value)}>
          {SHOW[kind](value)}
        </span>
        {note && <span className="stat-note"> {note}</span>}
      </dd>
    </div>
  );
}

/** A row whose value is text. */
export function Fact({ label, testId, children, value }: { label: string; testId: string; children: ReactNode; value?: string }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd data-testid={testId} data-value={value}>
        {children}
      </dd>
    </div>
  );
}
