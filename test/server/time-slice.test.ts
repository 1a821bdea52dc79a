import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { yieldIfLong } from '../../src/server/time-slice.js';
import { busyWait } from '../helpers/event-loop.js';

// The clock is the test's: how long the loop has been busy must not depend on how fast this machine is.
let clock = 0;
beforeEach(() => {
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Starts in a fresh event-loop turn, so no slice is open. */
const freshTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

describe('cooperative time slicing', () => {
  it('does not pause a task that has been busy for less than a millisecond', async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    clock += 0.9;
    expect(yieldIfLong()).toBeUndefined();
  });

  it('gives way once the loop has been busy for more than a millisecond: a timer due meanwhile runs first', async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    let timerRan = false;
    setTimeout(() => {
      timerRan = true;
    }, 0);
    clock += 3;
    // and real time passes too, so the timer is due by the loop's next timers phase (the stubbed clock
    // only decides whether to give way; libuv's own clock decides when a timer is due)
    busyWait(3);
    const pause = yieldIfLong();
    expect(pause).toBeInstanceOf(Promise);
    expect(timerRan).toBe(false);
    await pause;
    expect(timerRan).toBe(true);
    // a new slice starts after the pause
    expect(yieldIfLong()).toBeUndefined();
  });

  it("ends the slice at the turn's end, so the next turn starts afresh", async () => {
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
    clock += 3;
    await freshTurn();
    expect(yieldIfLong()).toBeUndefined();
  });
});
