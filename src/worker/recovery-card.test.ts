// The recovery section of the model card and gradprune_recovery.json, from plain numbers.
import { describe, expect, it } from 'vitest';
import type { ComparisonRow } from '../eval/before-after';
import { recoveryCardSection, recoveryRecord, type RecoveryFacts } from './recovery-card';

const row = (label: string, layers: number, parameters: number, msPerToken: number, loss: number): ComparisonRow => ({
  label, layers, parameters, weightBytes: parameters * 4, parameterRatio: parameters / 342848, msPerToken, speedup: 0.3 / msPerToken, heldOutLoss: loss, perplexity: Math.exp(loss), acc: 0.25, accNorm: 0.5, storage: 'f32', residency: 'resident',
});

const facts: RecoveryFacts = {
  settings: {
    steps: 3, epochs: null, heldOut: 0, rank: 8, alpha: 32, modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], lr: 1e-4, weightDecay: 0.1,
    warmupSteps: 1, schedule: 'linear', maxGradNorm: 1, batchSize: 2, seqLen: 64, seed: 0, shuffle: true, weights: 'f32', checkpointing: false, maxGpuMemory: null,
  },
  steps: 2,
  stopped: true,
  losses: [3.5, 3.25],
  trainExamples: 18,
  elapsedSeconds: 4,
  before: { loss: 3.5, perplexity: Math.exp(3.5), tokens: 20, rows: 4, acc: 0.25, accNorm: 0.5, items: 4 },
  after: { loss: 3.25, perplexity: Math.exp(3.25), tokens: 20, rows: 4, acc: 0.5, accNorm: 0.5, items: 4 },
  table: [row('dense', 6, 342848, 0.3, 3.0), row('pruned', 4, 250432, 0.2, 3.5), row('pruned + recovered', 4, 250432, 0.2, 3.25)],
};

describe('recovery in the model card', () => {
  it('says how the adapter ships, what was trained, and gives the three rows', () => {
    const merged = recoveryCardSection(facts, 'merged', 'arc.jsonl');
    expect(merged).toMatch(/^## Recovery fine-tuning/);
    expect(merged).toContain('trained for 2 steps (stopped early; 3 were planned) on the 18 training examples of arc.jsonl');
    expect(merged).toContain('merged into the weights');
    expect(merged).toContain('Held-out loss 3.5000 → 3.2500');
    expect(merged).toContain('accuracy 25.0% → 50.0% over 4 questions');
    const rows = merged.split('\n').filter((l) => /^\| (dense|pruned)/.test(l));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toContain('| dense | 6 | 342,848 (100.0%) |');
    expect(rows[1]).toContain('| pruned | 4 | 250,432 (73.0%) |');
    expect(rows[1]).toContain('(1.50×)');
    const peft = recoveryCardSection(facts, 'peft', 'arc.jsonl');
    expect(peft).toContain('`adapter/`');
    expect(peft).toContain('PeftModel.from_pretrained');
  });

  it('records the run as JSON', () => {
    const r = recoveryRecord(facts, 'peft', 'tiny-gradprune-4L', { fileName: 'arc.jsonl', rows: 24 });
    expect(r).toMatchObject({ kind: 'gradprune-recovery', baseModel: 'tiny-gradprune-4L', merged: false, steps: 2, heldOutLossBefore: 3.5, heldOutLossAfter: 3.25, data: { fileName: 'arc.jsonl', rows: 24, train: 18, heldOut: 4 } });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
});
