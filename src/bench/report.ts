// What a benchmark run produces: sections of rows (plain JSON, the same from Node and from the browser page),
// and their printing as aligned text tables.

import type { AdapterSummary } from '../gpu/device';

export type Cell = string | number | null;
export type Row = Record<string, Cell>;

export interface BenchSection {
  title: string;
  columns: string[];
  rows: Row[];
  /** What was skipped and why, and how to read the numbers. */
  notes: string[];
}

export const SECTION_KEYS = ['kernels', 'training', 'igia', 'prune', 'onnxruntime', 'export', 'load', 'streaming', 'losshead', 'qwen05', 'longrun', 'hidden'] as const;
export type SectionKey = (typeof SECTION_KEYS)[number];

export interface BenchReport {
  /** 'node' (Dawn) or 'browser' (the page's navigator.gpu). */
  runtime: 'node' | 'browser';
  userAgent: string;
  adapter: AdapterSummary;
  size: string;
  date: string;
  sections: Partial<Record<SectionKey, BenchSection>>;
}

export const section = (title: string, columns: string[]): BenchSection => ({ title, columns, rows: [], notes: [] });

export const fixed = (x: number, digits: number): number => +x.toFixed(digits);
export const mib = (bytes: number): number => fixed(bytes / 2 ** 20, 1);

/** A section as lines of text: a title, an aligned table (when it has rows), and its notes. */
export function formatSection(s: BenchSection): string[] {
  const lines = [`== ${s.title}`];
  if (s.rows.length) {
    const text = (c: Cell | undefined) => (c === null || c === undefined ? '' : String(c));
    const width = s.columns.map((k) => Math.max(k.length, ...s.rows.map((r) => text(r[k]).length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
    lines.push(line(s.columns));
    for (const r of s.rows) lines.push(line(s.columns.map((k) => text(r[k]))));
  }
  for (const n of s.notes) lines.push(`  note: ${n}`);
  return lines;
}

export function formatReport(r: BenchReport): string[] {
  const a = r.adapter;
  const lines = [
    `adapter: ${a.name}${a.isSoftware ? ' (software)' : ''}; shader-f16 ${a.shaderF16}; timestamp-query ${a.timestampQuery}; maxBufferSize ${mib(a.maxBufferSize)} MiB`,
    `runtime: ${r.runtime} (${r.userAgent}); size: ${r.size}; ${r.date}`,
  ];
  for (const k of SECTION_KEYS) {
    const s = r.sections[k];
    if (s) lines.push('', ...formatSection(s));
  }
  return lines;
}
