// The Check's "Compare methods": the action sends the ticked methods, the range of N (to: the plan's N by default)
// and the Check's held-out cap; the worker's result lands in the comparePlans slice and its refusal in .error; a new
// plan starts the Check's results afresh, the comparison with them. The table shows each (method, N)'s numbers with
// the exact values in data-value; the chart's lines start at the dense model (0% removed) and follow each method.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import type { PlansEvaluatedEvent, WorkerEvent, WorkerRequest } from '../worker/protocol';
import { comparePlans, updateCompareChoice } from './actions/check';
import { chartSeries, CompareResult } from './components/ComparePlans';
import { STEP_RESULTS } from './slices';
import { initialState, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';
import { connectWorker } from './worker-connection';

type Req = WorkerRequest & { id: number };

const plan = (method: 'last' | 'bi' | null, prune: number, removedFraction: number, loss: number, acc?: number) => ({
  method, title: method ?? 'dense', prune, pruned: Array.from({ length: prune }, (_, i) => 4 - i).sort(), params: 1000 - prune * 100, removedFraction, loss, perplexity: Math.exp(loss), ...(acc === undefined ? {} : { acc, accNorm: acc }),
});
const answer = (id: number, items = 4): PlansEvaluatedEvent => ({
  type: 'plansEvaluated', requestId: id, rows: 4, items,
  plans: [plan(null, 0, 0, 3.25, 0.5), plan('last', 1, 0.1, 3.5, 0.25), plan('last', 2, 0.2, 4.125, 0), plan('bi', 1, 0.1, 3.375, 0.75), plan('bi', 2, 0.2, 3.75, 0.5)],
});

let sent: Req[] = [];
let refuse = false;
beforeEach(() => {
  useStudio.setState(initialState(), true);
  sent = [];
  refuse = false;
  const listeners: Array<(ev: Event) => void> = [];
  const port: WorkerPort = {
    postMessage: (m) => {
      const req = m as Req;
      sent.push(req);
      const events: WorkerEvent[] = refuse
        ? [{ type: 'error', requestId: req.id, error: { code: 'input', message: 'Angular distance was gathered for blocks of up to 2 layers; this plan removes 3.', subject: 'rankedBy' } }]
        : [{ type: 'progress', requestId: req.id, stage: 'Last layers, 1 layers removed (4): plan 1 of 4', fraction: 0.2 }, answer(req.id)];
      setTimeout(() => events.forEach((data) => listeners.forEach((l) => l({ data } as MessageEvent))), 0);
    },
    addEventListener: (type, l) => void (type === 'message' && listeners.push(l)),
  };
  connectWorker(createWorkerClient(port));
});

describe('Check: compare methods', () => {
  it("sends the ticked methods, N from 1 to the plan's N and the held-out cap; the result lands in the slice", async () => {
    useStudio.setState((s) => ({ planChoice: { ...s.planChoice, prune: 3 }, evaluateOptions: { ...s.evaluateOptions, maxExamples: 7 } }));
    updateCompareChoice({ methods: ['last', 'bi'] });
    await comparePlans();
    expect(sent.at(-1)).toMatchObject({ type: 'evaluatePlans', options: { methods: ['last', 'bi'], counts: [1, 2, 3], maxExamples: 7 } });
    updateCompareChoice({ from: 2, to: 4 });
    await comparePlans();
    expect(sent.at(-1)).toMatchObject({ options: { counts: [2, 3, 4] } });
    const { comparePlans: state } = useStudio.getState();
    expect(state).toMatchObject({ running: false, error: null, result: { rows: 4, items: 4 } });
    expect(state.result!.plans).toHaveLength(5);
    // A new plan (the Check's results started afresh) drops the comparison too; the choice stays.
    useStudio.setState(STEP_RESULTS.check());
    expect(useStudio.getState().comparePlans.result).toBeNull();
    expect(useStudio.getState().compareChoice).toMatchObject({ methods: ['last', 'bi'], from: 2, to: 4 });
  });

  it("puts the worker's refusal in comparePlans.error", async () => {
    refuse = true;
    await comparePlans();
    expect(useStudio.getState().comparePlans).toMatchObject({ running: false, result: null, error: { code: 'input', subject: 'rankedBy' } });
  });

  it('the table carries each (method, N) loss and accuracy exactly; the chart has one line per method from the dense point', () => {
    const html = renderToStaticMarkup(createElement(CompareResult, { result: answer(1) }));
    expect(html).toMatch(/data-testid="compare-last-2-loss" data-value="4.125">4\.1250</);
    expect(html).toMatch(/data-testid="compare-last-2-acc" data-value="0">0\.000</);
    expect(html).toMatch(/data-testid="compare-bi-1-acc" data-value="0.75">0\.750</);
    expect(html).toMatch(/data-testid="compare-bi-0-loss" data-value="3.25">/); // the dense column
    expect(html).toMatch(/data-testid="compare-chart" data-lines="2" data-metric="acc"/);
    expect(chartSeries(answer(1)).map((s) => [s.method, s.points])).toEqual([
      ['last', [{ removed: 0, value: 0.5 }, { removed: 10, value: 0.25 }, { removed: 20, value: 0 }]],
      ['bi', [{ removed: 0, value: 0.5 }, { removed: 10, value: 0.75 }, { removed: 20, value: 0.5 }]],
    ]);
  });

  it('without multiple-choice items the chart follows the held-out loss and the table has no accuracy', () => {
    const result = answer(1, 0);
    const html = renderToStaticMarkup(createElement(CompareResult, { result }));
    expect(html).toMatch(/data-metric="loss"/);
    expect(html).not.toContain('-acc"');
    expect(chartSeries(result)[0].points.map((p) => p.value)).toEqual([3.25, 3.5, 4.125]);
  });
});
