/**
 * Cooperative time slicing for the event loop. better-sqlite3 answers synchronously, so a sign-in step
 * that runs a dozen statements and renders a page is one long task: a token request arriving meanwhile
 * waits for all of it. `yieldIfLong()` lets such a chain give way once the loop has been busy for more
 * than SLICE_MS without a break: it resumes after the loop's next poll phase, where sockets that became
 * readable meanwhile (that token request) are served first.
 *
 * The slice starts when the first caller in an event-loop turn asks, and ends at that turn's check phase
 * (a setImmediate), so a request that starts on a quiet loop never pauses.
 */
const SLICE_MS = 1;

let sliceStart: number | undefined;
const endSlice = () => {
  sliceStart = undefined;
};

/** Resolves after one full turn of the event loop (through its next poll phase). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

export function yieldIfLong(): Promise<void> | undefined {
  const now = performance.now();
  if (sliceStart === undefined) {
    sliceStart = now;
    setImmediate(endSlice);
    return undefined;
  }
  if (now - sliceStart < SLICE_MS) return undefined;
  sliceStart = undefined;
  return nextTurn();
}
