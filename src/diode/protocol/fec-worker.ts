/**
 * The sender's RaptorQ encoder off the main thread: encoding a block of 2048 frames takes
 * ~30 ms, long enough to stall the pacer (and lose link time) if it ran in line.
 * Messages: {id, data (K*T bytes), t, r} in; {id, esi[], symbols (R*T bytes)} out.
 */
import { parentPort } from 'node:worker_threads';
import { encodeRepairs } from './raptorq.js';

parentPort?.on('message', (job: { id: number; data: Uint8Array; t: number; r: number }) => {
  try {
    const repairs = encodeRepairs(job.data, job.t, job.r);
    const symbols = new Uint8Array(repairs.length * job.t);
    repairs.forEach((x, i) => {
      symbols.set(x.symbol, i * job.t);
    });
    parentPort?.postMessage({ id: job.id, esi: repairs.map((x) => x.esi), symbols }, [symbols.buffer]);
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: (err as Error).message });
  }
});
