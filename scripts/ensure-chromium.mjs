#!/usr/bin/env node
// Before the tests: the gpu tier needs Vulkan + SwiftShader (shipped with Debian's chromium) for Dawn in Node,
// and the e2e tier needs Chromium itself. Install Debian's packages when they are missing, and say so.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const needed = [
  { pkg: 'chromium', file: '/usr/bin/chromium' },
  { pkg: 'libvulkan1', file: '/usr/lib/x86_64-linux-gnu/libvulkan.so.1', alt: '/usr/lib/aarch64-linux-gnu/libvulkan.so.1' },
];
const missing = needed.filter((n) => !existsSync(n.file) && !(n.alt && existsSync(n.alt))).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const cmd = `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`;
if (!isRoot) {
  console.error(`GradPrune Studio's tests need Debian's ${missing.join(' and ')}. Run as root:\n  ${cmd}`);
  process.exit(1);
}
console.log(`Installing Debian's ${missing.join(', ')} for the gpu and e2e tests (apt-get, as root)…`);
execSync(cmd, { stdio: 'inherit', shell: '/bin/bash' });
