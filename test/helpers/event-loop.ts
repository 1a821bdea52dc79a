/** Resolves in the check phase of the event loop's next turn (after its poll). */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Keeps the event loop busy for at least `ms` milliseconds of real time, as a request that takes long to
 * prepare its answer would. Reads Date.now, so it works where a test has stubbed performance.now.
 */
export function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}
