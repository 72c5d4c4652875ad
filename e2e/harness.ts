// What every e2e test needs: the built studio served on a free localhost port, Debian's Chromium with WebGPU on
// SwiftShader, a page that records its requests and errors, and screenshots under test-results/e2e/.
// Run through `npm run e2e`, which builds dist/ first.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { launchChromium, launchChromiumProfile } from '../src/testing/chromium';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.resolve(REPO_ROOT, '../shared/fixtures');
export const SCREENSHOTS = path.join(REPO_ROOT, 'test-results/e2e');
export interface Studio {
  url: string;
  origin: string;
  /** The browser context the page is in (close() closes it, and its browser). */
  context: BrowserContext;
  page: Page;
  /** Every URL the page (and its worker) requested. */
  requests: string[];
  /** Uncaught page errors and console errors. */
  errors: string[];
  /** What the Content-Security-Policy blocked: the page's own events, and the reports (page and worker) the server got. */
  cspViolations(): string[];
  screenshot(name: string): Promise<string>;
  /** One element only (a step's card), at full resolution: easier to read than the whole page. */
  shot(name: string, testId: string): Promise<string>;
  close(): Promise<void>;
}

/** The build to serve: dist/, or GRADPRUNE_E2E_DIST (a build of its own, e.g. `vite build --outDir /tmp/dist-x`). */
const DIST = path.resolve(REPO_ROOT, process.env.GRADPRUNE_E2E_DIST ?? 'dist');

export async function startServer(): Promise<PreviewServer> {
  if (!existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`${DIST} has no build: run the e2e tests with \`npm run e2e\` (it builds first).`);
  }
  // port 0: the OS picks a free port; resolvedUrls reports it.
  return preview({
    root: REPO_ROOT,
    configFile: path.join(REPO_ROOT, 'vite.config.ts'),
    logLevel: 'error',
    preview: { port: 0, strictPort: false, host: '127.0.0.1', open: false },
    build: { outDir: DIST },
  });
}

/**
 * Serve dist/, launch Chromium and open the studio. `webgpu: false` launches without the WebGPU flags; `profile: true`
 * gives the browser a profile on disk (removed on close), so that what the page stores outlives a reload.
 */
export async function openStudio(opts: { webgpu?: boolean; query?: string; profile?: boolean } = {}): Promise<Studio> {
  const server = await startServer();
  let context: BrowserContext | null = null;
  const profileDir = opts.profile ? mkdtempSync(path.join(tmpdir(), 'gradprune-e2e-profile-')) : null;
  const closeBrowser = async () => {
    const browser = context?.browser();
    await context?.close();
    await browser?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  };
  try {
    const url = server.resolvedUrls?.local[0];
    if (!url) throw new Error('vite preview did not report a URL');
    const viewport = { width: 1280, height: 900 };
    context = profileDir
      ? await launchChromiumProfile(profileDir, { webgpu: opts.webgpu, viewport })
      : await (await launchChromium({ webgpu: opts.webgpu })).newContext({ viewport });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(60_000);
    const requests: string[] = [];
    const errors: string[] = [];
    context.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && errors.push(`worker console: ${m.text()}`)));
    const violations: string[] = [];
    await page.exposeFunction('__gradpruneCspViolation', (v: string) => void violations.push(v));
    // No named function in the init script: tsx (esbuild's keepNames) wraps one in a __name() helper the page lacks.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) =>
        (window as unknown as { __gradpruneCspViolation: (v: string) => void }).__gradpruneCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`),
      );
    });
    await page.goto(url + (opts.query ?? ''));
    const ctx = context;
    return {
      url,
      origin: new URL(url).origin,
      context: ctx,
      page,
      requests,
      errors,
      cspViolations: () => [...violations, ...((server as { cspReports?: string[] }).cspReports ?? [])],
      async screenshot(name: string) {
        mkdirSync(SCREENSHOTS, { recursive: true });
        const file = path.join(SCREENSHOTS, `${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
      },
      async shot(name: string, testId: string) {
        mkdirSync(SCREENSHOTS, { recursive: true });
        const file = path.join(SCREENSHOTS, `${name}.png`);
        await page.getByTestId(testId).screenshot({ path: file });
        return file;
      },
      async close() {
        await closeBrowser();
        await closeServer(server);
      },
    };
  } catch (e) {
    await closeBrowser();
    await closeServer(server);
    throw e;
  }
}

/**
 * Privacy as the browser saw it: every request the page and its worker made, from opening the page, went to the
 * studio's own origin (or stayed in the page: data:, blob:), and the Content-Security-Policy blocked nothing the
 * studio needed. Empty when all is well.
 */
export function privacyProblems(studio: Studio): string[] {
  const foreign = studio.requests.filter((u) => !u.startsWith(`${studio.origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
  return [...foreign.map((u) => `request beyond the origin: ${u}`), ...studio.cspViolations().map((v) => `CSP: ${v}`)];
}

async function closeServer(server: PreviewServer): Promise<void> {
  await server.close();
}

/** The exact value an element carries in data-value; fails when it has none (a missing value must not pass as 0). */
export async function valueOf(page: Page, testId: string): Promise<string> {
  return attributeOf(page.getByTestId(testId), 'data-value', testId);
}

/** data-value as a number; fails when it is missing, empty or not a finite number. */
export async function numberOf(page: Page, testId: string): Promise<number> {
  return numberAttribute(page.getByTestId(testId), 'data-value', testId);
}

/** The data-value of every element with this test id, each a finite number (fails on the first that is not). */
export async function numbersOf(page: Page, testId: string): Promise<number[]> {
  const values = await page.getByTestId(testId).evaluateAll((els) => els.map((e) => e.getAttribute('data-value')));
  return values.map((v, i) => toNumber(v, `${testId} #${i}`, 'data-value'));
}

/** A numeric attribute of one element: fails when it is missing, empty or not a finite number. */
export async function numberAttribute(locator: Locator, name: string, what = String(locator)): Promise<number> {
  return toNumber(await locator.getAttribute(name), what, name);
}

async function attributeOf(locator: Locator, name: string, what: string): Promise<string> {
  const value = await locator.getAttribute(name);
  if (value === null) throw new Error(`${what} has no ${name} attribute`);
  return value;
}

function toNumber(value: string | null, what: string, name: string): number {
  const n = value === null || value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new Error(`${what}: ${name} is ${value === null ? 'missing' : JSON.stringify(value)}, not a number`);
  return n;
}

/**
 * Drop files or folders from disk onto an element, as the operating system does (Chromium's DevTools protocol;
 * a folder arrives as a directory entry that the page walks with webkitGetAsEntry).
 */
export async function dropPaths(page: Page, testId: string, paths: string[]): Promise<void> {
  const box = await page.getByTestId(testId).boundingBox();
  if (!box) throw new Error(`${testId} is not visible`);
  const x = box.x + box.width / 2;
  const y = box.y + Math.min(20, box.height / 2);
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  await cdp.detach();
}

/** Every step's error box (and the page's notice): what `until` fails on by default. */
export const STEP_ERRORS =
  '[data-testid=score-error], [data-testid=prune-error], [data-testid=check-error], [data-testid=generate-error], [data-testid=recover-error], [data-testid=download-error], [data-testid=load-error], [data-testid=notice]';

/** Wait for a selector, failing at once (with its text) when the studio shows one of `errors` instead. */
export async function until(page: Page, selector: string, errors = STEP_ERRORS): Promise<void> {
  const failure = page.waitForSelector(errors).then(async (el) => {
    throw new Error(`the studio shows an error while waiting for ${selector}: ${await el.innerText()}`);
  });
  failure.catch(() => {}); // settled by the race below, or left pending when the page closes
  await Promise.race([page.waitForSelector(selector), failure]);
}

/** "Try the demo" and start a brief scoring run (3 steps of one 96-token row); returns when it is started. */
export async function demoScoring(page: Page): Promise<void> {
  await page.getByTestId('demo-button').click();
  await page.waitForSelector('[data-testid=dataset-view]');
  await page.getByTestId('setting-seqlen').fill('96');
  await page.getByTestId('setting-steps').fill('3');
  await page.getByTestId('setting-batch').fill('1');
  await page.getByTestId('score-start').click();
}

/** The demo scored briefly and a plan removing `prune` layers applied: where the tests of the later steps start. */
export async function demoPruned(page: Page, prune = 2): Promise<void> {
  await demoScoring(page);
  await until(page, '[data-testid=prune-slider]');
  await page.getByTestId('prune-slider').fill(String(prune));
  await page.getByTestId('prune-apply').click();
  await until(page, '[data-testid=pruned]');
}
