// The session keeps each step's result in pipeline order and drops what a new earlier result makes stale; one
// training run at a time, paced by pause / resume / stop.
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../model/checkpoint';
import { Session } from './session';

// Step results stand in as tagged objects: the session only keeps and drops them.
const tag = <T>(name: string) => ({ tag: name }) as unknown as T;

function filled(): Session {
  const s = new Session(tag<Checkpoint>('dense'));
  s.dataset = tag('dataset');
  s.scoring = tag('scoring');
  s.pruned = tag('pruned');
  s.check = tag('check');
  s.recovery = tag('recovery');
  return s;
}
const kept = (s: Session) => Object.entries({ dataset: s.dataset, scoring: s.scoring, pruned: s.pruned, check: s.check, recovery: s.recovery }).filter(([, v]) => v).map(([k]) => k);

describe('Session', () => {
  it('dropAfter(step) forgets every result after the step, in pipeline order', () => {
    const expected = {
      checkpoint: [],
      dataset: ['dataset'],
      scoring: ['dataset', 'scoring'],
      pruned: ['dataset', 'scoring', 'pruned'],
    } as const;
    for (const [step, keep] of Object.entries(expected)) {
      const s = filled();
      s.dropAfter(step as keyof typeof expected);
      expect(kept(s), step).toEqual(keep);
    }
    const s = filled();
    s.dropRecovery();
    expect(kept(s)).toEqual(['dataset', 'scoring', 'pruned', 'check']);
  });

  it('names the missing step when a later one needs it', () => {
    const s = new Session(tag<Checkpoint>('dense'));
    expect(() => s.needDataset()).toThrow(expect.objectContaining({ code: 'input', subject: 'dataset' }));
    expect(() => s.needScoring()).toThrow(expect.objectContaining({ code: 'input', subject: 'scores' }));
    expect(() => s.needPruned()).toThrow(expect.objectContaining({ code: 'input', subject: 'prune' }));
  });

  it('runs one training run at a time; pause holds it between steps, stop ends it', async () => {
    const s = new Session(tag<Checkpoint>('dense'));
    expect(s.control('pause')).toBe('idle');
    const passed: number[] = [];
    let release!: () => void;
    const started = new Promise<void>((r) => (release = r));
    const run = s.training(async (control) => {
      for (let step = 0; step < 10; step++) {
        if (step === 1) release();
        if (!(await control.gate())) break;
        passed.push(step);
        await new Promise((r) => setTimeout(r, 1));
      }
      return passed.length;
    });
    await started;
    expect(s.control('pause')).toBe('paused');
    await expect(s.training(async () => 0)).rejects.toMatchObject({ code: 'input', subject: 'run' });
    const held = passed.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(passed.length).toBe(held); // paused: no step passes the gate
    expect(s.control('resume')).toBe('running');
    expect(s.control('stop')).toBe('stopping');
    expect(await run).toBeLessThan(10);
    expect(s.control('stop')).toBe('idle');
  });
});
