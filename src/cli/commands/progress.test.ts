// Long CLI phases say how far they are: `eval` during its loss pass; `finetune --help` says the before / after table is
// measured only with --measure. Through the real CLI entry point, on the CPU reference (no GPU).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../../testing/cli';
import { DATASETS, fixtureDir } from '../../testing/paths';
import { stepTimeText } from '../progress';

describe('CLI progress', () => {
  it('eval reports its loss pass: from 0 to every batch', async () => {
    // 6 rows in batches of 4 → 2 batches.
    const { code, stderr } = await cli('eval', fixtureDir('tiny-llama'), '--data', path.join(DATASETS, 'piqa', 'piqa.jsonl'), '--limit', '6', '--batch-size', '4', '--cpu');
    expect(code).toBe(0);
    const lines = stderr.split('\n').filter((l) => l.startsWith('loss '));
    expect(lines[0]).toMatch(/^loss  \[-{24}\] 0\/2 batches$/);
    expect(lines.at(-1)).toMatch(/^loss  \[#{24}\] 2\/2 batches$/);
  });

  it('finetune --help says the before / after table is measured only with --measure', async () => {
    const { code, stdout } = await cli('finetune', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/--measure\s+after writing the output, measure the before \/ after table.*off by default/);
  });

  it('a step line reads a slow rate as it is, and "estimating…" before the ETA is known', () => {
    expect(stepTimeText({ tokensPerSecond: 0.4213, elapsedSeconds: 65, etaSeconds: null })).toBe('0.421 tok/s  elapsed 65s  ETA estimating…');
    expect(stepTimeText({ tokensPerSecond: 1234.4, elapsedSeconds: 125, etaSeconds: 200 })).toBe('1234 tok/s  elapsed 2m05s  ETA 3m20s');
  });
});
