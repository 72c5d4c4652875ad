// The recovery run's seeded train / held-out split (its settings are tested with every run's, in nn/run-settings.test.ts).
import { describe, expect, it } from 'vitest';
import { recoverySplit } from './recovery';

describe('recoverySplit', () => {
  it('holds out the share or count asked for, seeded, in file order', () => {
    const items = [...Array(20).keys()];
    const a = recoverySplit(items, { heldOut: 0.25, seed: 1 });
    expect(a.heldOut).toHaveLength(5);
    expect(a.train).toHaveLength(15);
    expect([...a.heldOut].sort((x, y) => x - y)).toEqual(a.heldOut);
    expect(recoverySplit(items, { heldOut: 0.25, seed: 1 })).toEqual(a);
    expect(recoverySplit(items, { heldOut: 3, seed: 1 }).heldOut).toHaveLength(3);
    expect(() => recoverySplit(items, { heldOut: 20, seed: 1 })).toThrow(/Holding out 20 of 20 examples leaves none to train on/);
  });
});
