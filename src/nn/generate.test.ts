import { describe, expect, it } from 'vitest';
import { pickToken } from './generate';

describe('pickToken', () => {
  it('is the argmax at temperature 0 and stays inside the top-k', () => {
    const logits = Float32Array.from([0.1, 3, -1, 2.9, 0]);
    expect(pickToken(logits, {}, Math.random)).toBe(1);
    for (let i = 0; i < 50; i++) expect([1, 3]).toContain(pickToken(logits, { temperature: 5, topK: 2 }, Math.random));
    expect(pickToken(logits, { temperature: 1, topP: 0.01 }, Math.random)).toBe(1);
  });
});
