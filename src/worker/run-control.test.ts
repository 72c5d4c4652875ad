// RunControl: what a pause or stop answers about where the run holds — a step let through the gate finishes; a
// pause taken between steps holds before the next one.

import { describe, expect, it } from 'vitest';
import { RunControl } from './run-control';

describe('RunControl.holdsAfter', () => {
  it('is null while running', async () => {
    const c = new RunControl();
    expect(await c.gate(0)).toBe(true);
    expect(c.holdsAfter).toBeNull();
  });

  it('counts the step in flight when the pause comes during it', async () => {
    const c = new RunControl();
    await c.gate(0); // step 0 finished, step 1 let through: in flight
    await c.gate(1);
    c.act('pause');
    expect(c.holdsAfter).toBe(2);
  });

  it('holds at the steps done when the pause comes between steps', async () => {
    const c = new RunControl();
    await c.gate(0); // step 0 let through: in flight, or done with step 1 not yet at the gate
    c.act('pause'); // either way the run holds after step 0
    expect(c.holdsAfter).toBe(1);
    let passed = false;
    const next = c.gate(1).then((go) => (passed = go));
    await new Promise((r) => setTimeout(r, 5));
    expect(passed).toBe(false); // step 1 waits at the gate
    expect(c.holdsAfter).toBe(1);
    c.act('resume');
    await next;
    expect(passed).toBe(true);
    expect(c.holdsAfter).toBeNull();
  });

  it('a stop refuses the next step and answers the steps the run ends with', async () => {
    const c = new RunControl();
    await c.gate(0);
    await c.gate(1);
    c.act('stop');
    expect(c.holdsAfter).toBe(2);
    expect(await c.gate(2)).toBe(false);
    expect(c.holdsAfter).toBe(2);
  });

  it('answers 0 when paused before any step', () => {
    const c = new RunControl();
    c.act('pause');
    expect(c.holdsAfter).toBe(0);
  });
});
