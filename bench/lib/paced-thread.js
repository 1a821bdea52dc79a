// Runs `paced()` (lib/load.js) on a thread of its own, so that the burst figure's client_credentials
// generator keeps its own event loop: the sign-in workers' HTML parsing and cookie handling in the main
// thread of the benchmark then cannot delay its sends or the reading of its answers, which would be
// counted as server latency.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { paced } from './load.js';

if (!isMainThread && workerData?.pacedThread) {
  paced(workerData.options).then(
    (result) => parentPort.postMessage({ result }),
    (err) => parentPort.postMessage({ error: String(err?.stack ?? err) }),
  );
}

/** paced(options) on its own thread; resolves to the same result. */
export function pacedOnThread(options) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { pacedThread: true, options } });
    worker.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m.result)));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`the paced generator thread exited with code ${code}`)));
  });
}
