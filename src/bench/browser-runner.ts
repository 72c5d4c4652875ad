// `npm run bench -- --browser`: the same suite in Debian's Chromium with WebGPU (SwiftShader here), on a bench
// page served by Vite's dev server on localhost (plain TS and ?raw WGSL need no plugins, so the studio's config
// is not loaded); the report comes back through page.evaluate. Node only.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { CHROMIUM_PATH, launchChromium } from '../testing/chromium';
import type { SizeName } from './cases';
import type { BenchPageState } from './browser/page';
import type { BenchReport, SectionKey } from './report';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export interface BrowserBenchOptions {
  size?: SizeName;
  reps?: number;
  steps?: number;
  only?: string;
  sections?: SectionKey[];
  maxStepSeconds?: number;
  noOrt?: boolean;
  /** Qwen2.5-0.5B's config.json for the qwen05 section (passed to the page in the query string). */
  qwen05Config?: Record<string, unknown> | null;
}

export async function runInBrowser(opts: BrowserBenchOptions, log: (line: string) => void): Promise<BenchReport> {
  let server: ViteDevServer | null = null;
  let browser: Browser | null = null;
  try {
    server = await createServer({
      root: REPO_ROOT,
      configFile: false,
      logLevel: 'error',
      // Serve onnxruntime-web as shipped (ESM): pre-bundling moves it away from its wasm files.
      optimizeDeps: { noDiscovery: true, include: [] },
      server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
    });
    await server.listen();
    const base = server.resolvedUrls?.local[0];
    if (!base) throw new Error('the Vite dev server did not report a URL');
    const query = new URLSearchParams();
    if (opts.size) query.set('size', opts.size);
    if (opts.reps !== undefined) query.set('reps', String(opts.reps));
    if (opts.steps !== undefined) query.set('steps', String(opts.steps));
    if (opts.only) query.set('only', opts.only);
    if (opts.sections) query.set('sections', opts.sections.join(','));
    if (opts.maxStepSeconds !== undefined) query.set('maxStepSeconds', String(opts.maxStepSeconds));
    if (opts.noOrt) query.set('noOrt', '1');
    if (opts.qwen05Config) query.set('qwen05Config', JSON.stringify(opts.qwen05Config));
    const url = `${base}src/bench/browser/index.html?${query}`;
    log(`browser: ${CHROMIUM_PATH} → ${url}`);
    browser = await launchChromium();
    const page = await browser.newPage();
    page.on('console', (m) => log(`[page] ${m.text()}`));
    page.on('pageerror', (e) => log(`[page error] ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { __bench?: BenchPageState }).__bench?.done === true, null, { timeout: 0, polling: 1000 });
    const state = await page.evaluate(() => (window as unknown as { __bench: BenchPageState }).__bench);
    if (!state.report) throw new Error(`the bench page failed: ${state.error ?? 'no report'}`);
    return state.report;
  } finally {
    await browser?.close();
    await server?.close();
  }
}
