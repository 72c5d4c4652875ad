import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// One config for the studio (Vite) and for the unit and gpu test tiers (Vitest).
// The e2e tier drives the built studio in Chromium through playwright-core (see e2e/).
export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
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
          environment: 'node',
          setupFiles: ['src/testing/gpu-setup.ts'],
          // Software WebGPU (SwiftShader) is slow and single-device: one file at a time.
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
