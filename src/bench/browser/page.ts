// The benchmark page (served by `npm run bench -- --browser`): runs the suite on the page's navigator.gpu and
// leaves the report (or the error) in window.__bench for the runner to collect. Options come from the query string.
import { requestGpu } from '../../gpu/device';
import type { SizeName } from '../cases';
import type { OrtLoader } from '../ort';
import type { BenchReport, SectionKey } from '../report';
import { runBenchSuite } from '../suite';

export interface BenchPageState {
  done: boolean;
  report?: BenchReport;
  error?: string;
}

declare global {
  interface Window {
    __bench: BenchPageState;
  }
}

window.__bench = { done: false };
const logEl = document.getElementById('log')!;
const log = (line: string) => {
  console.log(line);
  logEl.textContent += `\n${line}`;
};
const q = new URLSearchParams(location.search);
const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);

const loadOrt: OrtLoader = async () => {
  const ort = await import('onnxruntime-web/webgpu');
  ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no wasm threads
  ort.env.logLevel = 'error';
  return ort;
};

try {
  const gpu = await requestGpu();
  const size = (q.get('size') ?? (gpu.adapter.isSoftware ? 'small' : 'large')) as SizeName;
  log(`adapter: ${gpu.adapter.name}; size ${size}`);
  const report = await runBenchSuite(gpu, {
    size,
    reps: num('reps'),
    steps: num('steps'),
    only: q.get('only') ?? undefined,
    sections: q.get('sections')?.split(',') as SectionKey[] | undefined,
    maxStepSeconds: num('maxStepSeconds'),
    loadOrt: q.has('noOrt') ? null : loadOrt,
    qwen05Config: q.has('qwen05Config') ? (JSON.parse(q.get('qwen05Config')!) as Record<string, unknown>) : null,
    ortUnavailable: 'onnxruntime-web: skipped (--no-ort)',
    runtime: 'browser',
    userAgent: navigator.userAgent,
    log,
  });
  window.__bench = { done: true, report };
} catch (e) {
  const err = e as Error;
  log(`error: ${err.message}`);
  window.__bench = { done: true, error: `${err.name}: ${err.message}\n${err.stack ?? ''}` };
}
