import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';

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

// One config for the studio (Vite) and for the unit and gpu test tiers (Vitest).
// The e2e tier drives the built studio in Chromium through playwright-core (see e2e/).
export default defineConfig({
  plugins: [react(), printDemoUrl()],
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
