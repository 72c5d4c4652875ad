import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import type { Connect, Plugin } from 'vite';

/** `npm start` prints, beside the studio's URL, the one that opens it with the demo model loaded. */
const printDemoUrl = (): Plugin => ({
  name: 'gradprune-print-demo-url',
  configureServer(server) {
    const printUrls = server.printUrls.bind(server);
    server.printUrls = () => {
      printUrls();
      const url = server.resolvedUrls?.local[0];
      if (url) server.config.logger.info(`  ➜  Demo:    ${url}?demo  (loads the embedded demo model)`);
    };
  },
});

/**
 * Privacy enforced by the browser: the studio may connect to its own origin only (no CDN, no model hub, no
 * telemetry, no web fonts); scripts, workers and WebAssembly come from the origin too (blob: workers allowed).
 * The built index.html carries it as a <meta> tag (wherever dist/ is hosted); `npm start` and `vite preview`
 * also send it as a header, which is what binds the worker (a worker's policy comes from its own response) and
 * where violations are reported to CSP_REPORT_PATH (printed on the terminal, kept for the e2e tests).
 */
export const STUDIO_CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
export const CSP_REPORT_PATH = '/__csp-report';
/**
 * `npm start` only: Vite's dev client injects the CSS as <style> elements and React's fast refresh an inline
 * module script, so the dev policy also allows inline scripts and styles. Connections stay same-origin (the HMR
 * WebSocket is on the page's own host and port, which 'self' covers).
 */
const DEV_CSP = STUDIO_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** The policy as a <meta> tag in index.html and as a header; violations reported to the server are printed and kept. */
const contentSecurityPolicy = (): Plugin => {
  const reports: string[] = [];
  const collect: Connect.NextHandleFunction = (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      let report: Record<string, unknown> = {};
      try {
        report = (JSON.parse(body) as { 'csp-report'?: Record<string, unknown> })['csp-report'] ?? {};
      } catch {
        // not a report: counted with what it says
      }
      const line = `Content-Security-Policy blocked ${String(report['blocked-uri'] ?? body)} (${String(report['violated-directive'] ?? '?')}) on ${String(report['document-uri'] ?? '?')}`;
      reports.push(line);
      console.warn(line);
      res.statusCode = 204;
      res.end();
    });
  };
  const header = (policy: string) => `${policy}; report-uri ${CSP_REPORT_PATH}`;
  return {
    name: 'gradprune-content-security-policy',
    config: () => ({ server: { headers: { 'Content-Security-Policy': header(DEV_CSP) } }, preview: { headers: { 'Content-Security-Policy': header(STUDIO_CSP) } } }),
    transformIndexHtml: {
      order: 'pre',
      handler: (_html, ctx) => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: ctx.server ? DEV_CSP : STUDIO_CSP }, injectTo: 'head-prepend' }],
    },
    configureServer(server) {
      Object.assign(server, { cspReports: reports });
      server.middlewares.use(CSP_REPORT_PATH, collect);
    },
    configurePreviewServer(server) {
      Object.assign(server, { cspReports: reports });
      server.middlewares.use(CSP_REPORT_PATH, collect);
    },
  };
};

// One config for the studio (Vite) and for the unit and gpu test tiers (Vitest).
// The e2e tier drives the built studio in Chromium through playwright-core (see e2e/).
export default defineConfig({
  plugins: [react(), printDemoUrl(), contentSecurityPolicy()],
  worker: { format: 'es' },
  // Pre-bundle the worker's big dependency at start-up: discovered later (when the worker first loads), Vite
  // re-optimises and reloads the page, dropping the person's first click in `npm start`.
  optimizeDeps: { include: ['@huggingface/transformers'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  server: { port: 5173 },
  preview: { port: 5173 },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          exclude: ['src/**/*.gpu.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'gpu',
          include: ['src/**/*.gpu.test.ts'],
          exclude: ['src/**/*.f16.gpu.test.ts'],
          environment: 'node',
          setupFiles: ['src/testing/gpu-setup.ts'],
          // Software WebGPU (SwiftShader) is slow and single-device: one file at a time.
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
      {
        extends: true,
        test: {
          // f16 weight storage, on Mesa 25 lavapipe (shader-f16) from scripts/ensure-lavapipe.mjs; skipped without it.
          name: 'gpu-f16',
          include: ['src/**/*.f16.gpu.test.ts'],
          environment: 'node',
          setupFiles: ['src/testing/gpu-f16-setup.ts'],
          globalSetup: ['src/testing/gpu-f16-global.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
