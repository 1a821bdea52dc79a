// Runs `paced()` (lib/load.js) on a thread of its own, so that the burst figure's client_credentials
// generator keeps its own event loop: the sign-in workers' HTML parsing and cookie handling in the main
// thread of the benchmark then cannot delay its sends or the reading of its answers, which would be
// counted as server latency.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { paced } from './load.js';

if (!isMainThread && workerData?.pacedThread) {
  let stop = false;
  parentPort.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  paced({ ...workerData.options, stopped: () => stop }).then(
    (result) => parentPort.postMessage({ result }),
    (err) => parentPort.postMessage({ error: String(err?.stack ?? err) }),
  );
}

/**
 * paced(options) on its own thread; `result` resolves to the same result. `stop()` ends the sending
 * early (requests in flight are still awaited).
 */
export function pacedOnThread(options) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { pacedThread: true, options } });
  const result = new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (m) => {
      settled = true;
      // its message listener would keep the thread (and this process) alive
      void worker.terminate();
      if (m.error) reject(new Error(m.error));
      else resolve(m.result);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => !settled && reject(new Error(`the paced generator thread exited with code ${code}`)));
  });
  return { result, stop: () => worker.postMessage('stop') };
}
