// `npx gradprune …` reads the project's npm configuration: every key in it must be one npm knows (npm 11 warns
// "Unknown project config" on each run otherwise), and onnxruntime-node (a dependency of transformers.js, unused
// here) must not download its CUDA libraries at install: package.json's allowScripts denies its install script.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('the npm configuration', () => {
  it("denies onnxruntime-node's install script (its CUDA download) through allowScripts", () => {
    const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
  });

  it('has no key npm warns about when `npx` runs in the project', () => {
    const run = spawnSync('npm', ['exec', '--offline', '--', 'node', '-e', '0'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/Unknown (project|user|env) config/);
  });
});
