// Debian's Chromium as the e2e tests and the browser bench launch it: headless, WebGPU on SwiftShader, and no
// background networking (this machine's network is closed). The flags are DESIGN.md's environment recipe. Node only.

import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const QUIET_FLAGS = [
  '--no-sandbox',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-webgpu-developer-features'];

function launchOptions(opts: { webgpu?: boolean }) {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: run \`node scripts/ensure-chromium.mjs\` as root (npm test does), or set CHROMIUM_PATH.`);
  }
  return { executablePath: CHROMIUM_PATH, headless: true, args: [...QUIET_FLAGS, ...(opts.webgpu === false ? [] : WEBGPU_FLAGS)] };
}

/** `webgpu: false` launches without the WebGPU flags (the studio's no-WebGPU page). */
export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch(launchOptions(opts));
}

/**
 * Chromium with a profile on disk (`userDataDir`), as a person's browser has: its origin-private file system and
 * IndexedDB outlive a reload. (A fresh context of `launchChromium` is incognito-like: its OPFS lives in memory and
 * went with the page on reload.)
 */
export async function launchChromiumProfile(userDataDir: string, opts: { webgpu?: boolean; viewport?: { width: number; height: number } } = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { ...launchOptions(opts), viewport: opts.viewport });
}
