// The Check step's exact-match option: the action sends it with the evaluation request, the result (both models'
// numbers, every answer) lands in the check slice, a worker's refusal (a plain-text dataset) lands in check.error;
// the comparison table gains the two columns and the answers list shows label, both answers and their marks.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ComparisonRow } from '../eval/before-after';
import type { EvaluatedEvent, ExactMatchView, WorkerEvent, WorkerRequest } from '../worker/protocol';
import { evaluate, updateEvaluateOptions } from './actions/check';
import { ComparisonTable } from './components/ComparisonTable';
import { ExactMatchAnswers } from './components/ExactMatchAnswers';
import { initialState, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';
import { connectWorker } from './worker-connection';

type Req = WorkerRequest & { id: number };

const row = (label: string, exactMatch: number | null, normalizedExactMatch: number | null): ComparisonRow => ({
  label, layers: 4, parameters: 400, weightBytes: 1600, parameterRatio: 1, msPerToken: 1, speedup: 1, heldOutLoss: 3, perplexity: Math.exp(3), acc: null, accNorm: null,
  exactMatch, normalizedExactMatch, storage: 'f32', residency: 'resident',
});
const view: ExactMatchView = {
  rows: [
    { where: 'line 4', prompt: 'Q: capital of France?\nA:', label: ' Paris', dense: ' Paris', pruned: ' paris.', denseMatch: true, prunedMatch: false, denseNormalizedMatch: true, prunedNormalizedMatch: true },
    { where: 'line 9', prompt: 'Q: 2+2?\nA:', label: ' 4', dense: ' 5', pruned: '', denseMatch: false, prunedMatch: false, denseNormalizedMatch: false, prunedNormalizedMatch: false },
  ],
  skipped: 1,
  margin: 4,
};
const evaluated = (id: number): EvaluatedEvent => ({
  type: 'evaluated', requestId: id,
  dense: { loss: 3, perplexity: Math.exp(3), tokens: 10, rows: 3, exactMatch: 0.5, normalizedExactMatch: 0.5, answered: 2 },
  pruned: { loss: 3.2, perplexity: Math.exp(3.2), tokens: 10, rows: 3, exactMatch: 0, normalizedExactMatch: 0.5, answered: 2 },
  table: [row('dense', 0.5, 0.5), row('pruned', 0, 0.5)], generations: [], exactMatch: view, precision: { storage: 'f32', reason: 'adapter has no shader-f16' },
});

let sent: Req[] = [];
let refuse = false;
beforeEach(() => {
  useStudio.setState(initialState(), true);
  sent = [];
  const listeners: Array<(ev: Event) => void> = [];
  const port: WorkerPort = {
    postMessage: (m) => {
      const req = m as Req;
      sent.push(req);
      const events: WorkerEvent[] = refuse
        ? [{ type: 'error', requestId: req.id, error: { code: 'dataset', message: 'stories.jsonl: exact match needs rows with a prompt and a label', subject: 'stories.jsonl' } }]
        : [evaluated(req.id)];
      setTimeout(() => events.forEach((data) => listeners.forEach((l) => l({ data } as MessageEvent))), 0);
    },
    addEventListener: (type, l) => void (type === 'message' && listeners.push(l)),
  };
  connectWorker(createWorkerClient(port));
});

describe('Check: exact match', () => {
  it('is off by default; switched on, the evaluation asks for it and its answers land in the check slice', async () => {
    refuse = false;
    expect(useStudio.getState().evaluateOptions.exactMatch).toBe(false);
    updateEvaluateOptions({ exactMatch: true });
    await evaluate();
    expect(sent.at(-1)).toMatchObject({ type: 'evaluate', options: { exactMatch: true } });
    const { check } = useStudio.getState();
    expect(check).toMatchObject({ running: false, error: null, result: { dense: { exactMatch: 0.5 }, pruned: { exactMatch: 0 } } });
    expect(check.result!.exactMatch!.rows.map((r) => r.where)).toEqual(['line 4', 'line 9']);
  });

  it("puts the worker's refusal under the Check step", async () => {
    refuse = true;
    updateEvaluateOptions({ exactMatch: true });
    await evaluate();
    expect(useStudio.getState().check).toMatchObject({ running: false, result: null, error: { code: 'dataset', subject: 'stories.jsonl' } });
  });

  it('the table shows both numbers per model; without them it has no exact-match columns', () => {
    const html = renderToStaticMarkup(createElement(ComparisonTable, { rows: [row('dense', 0.5, 0.75), row('pruned', 0, 0.5)], keys: ['dense', 'pruned'], testId: 't', testPrefix: 'eval' }));
    expect(html).toContain('Exact match (normalised)');
    expect(html).toMatch(/data-testid="eval-dense-em" data-value="0.5">50\.0%</);
    expect(html).toMatch(/data-testid="eval-dense-em-norm" data-value="0.75">75\.0%</);
    expect(html).toMatch(/data-testid="eval-pruned-em" data-value="0">0\.0%</);
    const without = renderToStaticMarkup(createElement(ComparisonTable, { rows: [row('dense', null, null)], keys: ['dense'], testId: 't', testPrefix: 'eval' }));
    expect(without).not.toContain('Exact match');
  });

  it('lists each prompt with its label, both answers and a mark: ✓ exact, ≈ normalised only, ✗ neither', () => {
    const html = renderToStaticMarkup(createElement(ExactMatchAnswers, { view }));
    expect(html).toContain('Answers to 2 held-out prompts');
    expect(html).toContain('+ 4 tokens');
    expect(html).toContain('1 row has no prompt and label');
    const marks = [...html.matchAll(/data-match="(\w+)"/g)].map((m) => m[1]);
    expect(marks).toEqual(['exact', 'normalized', 'none', 'none']);
    expect(html).toContain('(nothing)');
    expect(html).toContain('Q: capital of France?\nA:');
  });
});
