/**
 * The FEC thread: encoding a block (a 4096-frame RaptorQ block takes ~50 ms, the sender's
 * pacer would stall on it) and decoding one (~75 ms, the receiver's frame path would) off the
 * main thread. One job at a time, in order:
 *   {op: 'encode', id, code, data (K*T bytes), t, r}        → {id, esis, symbols (R*T bytes)}
 *   {op: 'decode', id, code, k, r, t, esis, symbols}         → {id, esis, symbols, ms} the missing
 *                                                               sources, or {id, ms, short: true}
 * and {id, error} when the job failed.
 */
import { parentPort } from 'node:worker_threads';
import { type FecJob, runFecJob } from './fec-code.js';

parentPort?.on('message', (job: FecJob & { id: number }) => {
  const out = runFecJob(job);
  const transfer = out.esis && out.symbols ? [out.esis.buffer, out.symbols.buffer] : [];
  parentPort?.postMessage({ id: job.id, ...out }, transfer as ArrayBuffer[]);
});
