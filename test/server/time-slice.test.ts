import { describe, expect, it } from 'vitest';
import { yieldIfLong } from '../../src/server/time-slice.js';

const spin = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy, like a chain of synchronous SQLite statements
  }
};

/** Starts in a fresh event-loop turn, so no slice is open. */
const freshTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

describe('cooperative time slicing', () => {
  it('does not pause a task that has only just started', async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    expect(yieldIfLong()).toBeUndefined();
  });

  it('gives way once the loop has been busy for more than a millisecond: a timer due meanwhile runs first', async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    let timerRan = false;
    setTimeout(() => {
      timerRan = true;
    }, 0);
    spin(3);
    const pause = yieldIfLong();
    expect(pause).toBeInstanceOf(Promise);
    expect(timerRan).toBe(false);
    await pause;
    expect(timerRan).toBe(true);
    // a new slice starts after the pause
    expect(yieldIfLong()).toBeUndefined();
  });

  it('ends the slice at the turn\'s end, so the next turn starts afresh', async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    spin(3);
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
  });
});
