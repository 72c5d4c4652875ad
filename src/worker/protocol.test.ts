import { describe, expect, it } from 'vitest';
import { isWorkerEvent, RESULT_EVENT_TYPE } from './protocol';

describe('worker protocol', () => {
  it('knows the result event of every request, and every event the worker sends', () => {
    for (const type of Object.values(RESULT_EVENT_TYPE)) expect(isWorkerEvent({ type, requestId: 1 }), type).toBe(true);
    for (const type of ['progress', 'scoreStep', 'recoverStep', 'deviceLost', 'error']) expect(isWorkerEvent({ type, requestId: 1 }), type).toBe(true);
    expect(RESULT_EVENT_TYPE).toMatchObject({ loadDataset: 'datasetLoaded', setFormat: 'datasetLoaded', score: 'scored', pause: 'scoreControl', stop: 'scoreControl', applyPrune: 'pruned', recover: 'recovered', exportZip: 'exported' });
  });
  it('rejects what is not an event', () => {
    for (const data of [null, 'scored', { type: 'frobnicated' }, { type: 3 }, {}]) expect(isWorkerEvent(data)).toBe(false);
  });
});
