#!/usr/bin/env node
// Before the tests: the gpu-f16 tier needs a Vulkan driver with shader-f16 for Dawn in Node. SwiftShader has none;
// Debian bookworm's own Mesa 22 lavapipe does not work with Dawn; bookworm-backports' Mesa 25 lavapipe does (and is
// 5-8x faster). Provide it privately, from Debian packages only, without touching the system's apt sources:
//   apt-get update + download of mesa-vulkan-drivers from bookworm-backports with a private apt config (own sources
//   list, lists and cache under .cache/lavapipe/apt), `dpkg -x` into .cache/lavapipe/root, and an ICD manifest
//   .cache/lavapipe/lvp_icd.json that src/testing/gpu-f16-setup.ts points VK_ICD_FILENAMES at.
// Libraries the driver links against (libLLVM-15 from bookworm) are installed with the system's apt-get when
// missing. Idempotent (does nothing when the driver is there and loads), and never fatal: if anything fails it says
// in one line that the f16 tests will be skipped, and why.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, '.cache', 'lavapipe');
const ICD = path.join(DIR, 'lvp_icd.json');
const EXTRACTED = path.join(DIR, 'root');
const APT = path.join(DIR, 'apt');
const SUITE = 'bookworm-backports';
// A local Debian mirror may stand in for deb.debian.org.
const MIRROR = process.env.GRADPRUNE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const PACKAGE = 'mesa-vulkan-drivers';
const say = (line) => console.log(`lavapipe: ${line}`);
const rel = (p) => path.relative(ROOT, p);

class Skip extends Error {}

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const has = (cmd) => (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, cmd)));

/** The Debian multiarch triplet of this machine (x86_64-linux-gnu, aarch64-linux-gnu). */
function triplet() {
  try {
    return run('dpkg-architecture', ['-qDEB_HOST_MULTIARCH']).trim();
  } catch {
    const arch = run('dpkg', ['--print-architecture']).trim();
    const map = { amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
    if (!map[arch]) throw new Skip(`no bookworm-backports lavapipe for architecture ${arch}`);
    return map[arch];
  }
}

const driverPath = (t) => path.join(EXTRACTED, 'usr', 'lib', t, 'libvulkan_lvp.so');

/** Shared libraries the driver needs that the dynamic loader cannot find. */
function missingLibraries(lib) {
  return run('ldd', [lib])
    .split('\n')
    .filter((l) => /not found/.test(l))
    .map((l) => l.trim().split(/\s+/)[0]);
}

/** A private apt: only bookworm-backports, lists and archives under .cache/lavapipe/apt, the system's state untouched. */
function privateApt(args) {
  const lists = path.join(APT, 'lists');
  const cache = path.join(APT, 'cache');
  const parts = path.join(APT, 'sources.list.d');
  for (const d of [path.join(lists, 'partial'), path.join(cache, 'archives', 'partial'), parts]) mkdirSync(d, { recursive: true });
  const sources = path.join(APT, 'sources.list');
  writeFileSync(sources, `deb ${MIRROR} ${SUITE} main\n`);
  const options = [
    `Dir::Etc::SourceList=${sources}`,
    `Dir::Etc::SourceParts=${parts}`,
    `Dir::State::Lists=${lists}`,
    `Dir::Cache=${cache}`,
    // Files under the project may not be readable by apt's unprivileged download user.
    'APT::Sandbox::User=root',
    'Acquire::Retries=2',
    'Acquire::http::Timeout=30',
  ].flatMap((o) => ['-o', o]);
  // apt-get reports failures on stderr; with 2>&1 they come back with the output, and a failed update exits 0.
  return run('sh', ['-c', 'exec apt-get "$@" 2>&1', 'apt-get', '-q', ...options, ...args], { cwd: APT, timeout: 300_000 });
}

/** The first apt error or warning line of some output (the reason a person can act on). */
function aptProblem(out) {
  const lines = `${out ?? ''}`.split('\n').map((l) => l.trim());
  for (const tag of ['E:', 'W:', 'Err:']) {
    const line = lines.find((l) => l.startsWith(tag));
    if (line) return line.replace(/\s+/g, ' ');
  }
  return undefined;
}

/** Download the backports driver package and unpack it into .cache/lavapipe/root; returns its version. */
function fetchDriver() {
  say(`downloading ${PACKAGE} from Debian ${SUITE} into ${rel(DIR)} (private apt lists; the system's sources stay as they are)…`);
  try {
    const updated = privateApt(['update']);
    const listed = readdirSync(path.join(APT, 'lists')).some((f) => f.includes(`${SUITE}_main_binary`) && f.includes('Packages'));
    if (!listed) throw Object.assign(new Error('no package list'), { stdout: updated });
    for (const f of readdirSync(APT)) if (f.endsWith('.deb')) rmSync(path.join(APT, f));
    privateApt(['download', `${PACKAGE}/${SUITE}`]);
  } catch (e) {
    const detail = aptProblem(e.stdout) ?? `${e.stdout ?? ''}`.trim().split('\n').filter(Boolean).pop() ?? e.message;
    throw new Skip(`could not download ${PACKAGE} from ${MIRROR} ${SUITE}: ${detail}`);
  }
  const deb = readdirSync(APT).find((f) => f.startsWith(`${PACKAGE}_`) && f.endsWith('.deb'));
  if (!deb) throw new Skip(`apt-get download left no ${PACKAGE} package in ${rel(APT)}`);
  rmSync(EXTRACTED, { recursive: true, force: true });
  run('dpkg', ['-x', path.join(APT, deb), EXTRACTED]);
  return { deb: path.join(APT, deb), version: run('dpkg-deb', ['-f', path.join(APT, deb), 'Version']).trim() };
}

/** Install (with the system's apt, from bookworm) the packages the driver depends on that are not installed. */
function installDependencies(deb) {
  const depends = run('dpkg-deb', ['-f', deb, 'Depends'])
    .split(',')
    .map((d) => d.split('|')[0].trim().split(/\s|:/)[0])
    .filter(Boolean);
  const installed = (pkg) => {
    try {
      return /install ok installed/.test(run('dpkg-query', ['-W', '-f=${Status}', pkg]));
    } catch {
      return false;
    }
  };
  const missing = depends.filter((p) => !installed(p));
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const cmd = `apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`;
  if (!isRoot) throw new Skip(`the driver needs ${missing.join(', ')}; as root run: ${cmd}`);
  say(`installing Debian's ${missing.join(', ')} (libraries the driver links against)…`);
  try {
    run('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${cmd} || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${cmd})`], { timeout: 600_000 });
  } catch (e) {
    throw new Skip(`could not install ${missing.join(', ')} (${`${e.stderr ?? ''}`.trim().split('\n').pop() || e.message})`);
  }
}

/** The Vulkan ICD manifest; the library path is relative to the manifest, so the checkout may move. */
function writeManifest(t) {
  const library = `./${path.relative(DIR, driverPath(t))}`;
  writeFileSync(ICD, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.4.305' } }, null, 2) + '\n');
}

function ensure() {
  if (process.platform !== 'linux') throw new Skip(`lavapipe from Debian needs Linux (this is ${process.platform})`);
  if (!['apt-get', 'dpkg', 'ldd'].every(has)) throw new Skip('no apt-get, dpkg or ldd (not a Debian system)');
  const t = triplet();
  if (existsSync(ICD) && existsSync(driverPath(t)) && missingLibraries(driverPath(t)).length === 0) {
    say(`present (${rel(ICD)}); the gpu-f16 tests use it`);
    return;
  }
  let fetched = null;
  if (!existsSync(driverPath(t))) fetched = fetchDriver();
  if (!existsSync(driverPath(t))) throw new Skip(`${PACKAGE} has no ${path.relative(EXTRACTED, driverPath(t))}`);
  const debs = existsSync(APT) ? readdirSync(APT).filter((f) => f.endsWith('.deb')) : [];
  if (missingLibraries(driverPath(t)).length && debs.length) installDependencies(path.join(APT, debs[0]));
  const missing = missingLibraries(driverPath(t));
  if (missing.length) throw new Skip(`the driver cannot load: ${missing.join(', ')} not found`);
  writeManifest(t);
  say(`ready${fetched ? ` (Mesa ${fetched.version})` : ''}: ${rel(ICD)}; the gpu-f16 tests use it`);
}

try {
  ensure();
} catch (e) {
  const why = e instanceof Skip ? e.message : `unexpected error: ${e.message}`;
  console.log(`lavapipe: not available (${why}); the f16 tests (vitest project gpu-f16) will be skipped.`);
}
