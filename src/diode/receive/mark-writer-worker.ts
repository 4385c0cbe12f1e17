/**
 * The mark writer's thread (mark-writer.ts): writes each epoch mark it is given — fsync,
 * rename, fsync of the directory — in order, then says so in shared memory (the ticket done,
 * or failed) so the main thread can wait for it without an event loop turn.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { saveEpochMark } from './epoch-mark.js';

const state = new Int32Array(workerData.shared as SharedArrayBuffer);

parentPort?.on(
  'message',
  (job: { ticket: number; file: string; mark: { epoch: number; link: number; repair: number } }) => {
    try {
      saveEpochMark(job.file, job.mark);
      Atomics.store(state, 0, job.ticket);
    } catch (err) {
      Atomics.store(state, 1, job.ticket);
      Atomics.store(state, 0, job.ticket);
      parentPort?.postMessage({ ticket: job.ticket, error: (err as Error).message });
    }
    Atomics.notify(state, 0);
  },
);
