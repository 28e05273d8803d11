import { describe, expect, it } from 'vitest';
import { CommitGate } from '../src/commit-gate.js';

describe('CommitGate', () => {
  it('a held commit whose start throws is refused with that error alone: the commits admitted with it start, in order, and releasing does not throw', async () => {
    const gate = new CommitGate();
    const release = gate.hold('test hold', 60_000);
    const started: string[] = [];
    const failing = new Error('staging refused');
    const first = gate.wait('commit', () => {
      started.push('first');
      return Promise.resolve('first');
    });
    const throwing = gate.wait('commit', () => {
      started.push('throwing');
      throw failing;
    });
    const last = gate.wait('commit', () => {
      started.push('last');
      return Promise.resolve('last');
    });
    expect(gate.waitingCount).toBe(3);
    expect(() => release()).not.toThrow();
    expect(started).toEqual(['first', 'throwing', 'last']);
    await expect(first).resolves.toBe('first');
    await expect(throwing).rejects.toBe(failing);
    await expect(last).resolves.toBe('last');
    expect(gate.waitingCount).toBe(0);
  });
});
