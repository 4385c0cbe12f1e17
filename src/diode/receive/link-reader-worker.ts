/**
 * The link reader's thread (link-reader.ts): receives datagrams in batches (recvmmsg) from a
 * socket of its own, and posts each batch to the main thread as one transferred buffer. It
 * does nothing else, so the socket is drained while the main thread is busy; what the main
 * thread has not yet taken is bounded by `queueBytes`, beyond which datagrams are dropped here
 * and counted. With a key file it also checks each datagram's tag (auth.ts), so the main
 * thread gets a verdict per datagram instead of computing the HMAC itself; it re-reads the
 * key file every second, as the main thread does. Counters and the stop flag are in shared
 * memory (SHARED below).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  boundPort,
  closeBatchSocket,
  DatagramBatch,
  EAGAIN,
  EINTR,
  lastError,
  MSG_WAITFORONE,
  openBatchSocket,
  setBatchReceiveBuffer,
  socketMemory,
} from '../../shared/mmsg.js';
import { KeyRing, UNCHECKED, verdictOf } from '../protocol/auth.js';
import { type LinkReaderSetup, SHARED } from './link-reader.js';

const setup = workerData as LinkReaderSetup;
const flags = new Int32Array(setup.shared, 0, 2);
const consumed = new BigInt64Array(setup.shared, 8, 1);
const stats = new Float64Array(setup.shared, 16, SHARED.count);
const port = parentPort!;

let fd: number;
let ring: KeyRing | undefined;
try {
  ring = setup.keyFile ? new KeyRing(setup.keyFile) : undefined;
  const s = openBatchSocket({
    host: setup.host,
    port: setup.port,
    receiveBufferBytes: setup.receiveBufferBytes,
    timeoutMs: 100,
  });
  fd = s.fd;
  port.postMessage({ type: 'ready', fd, port: boundPort(fd), receiveBuffer: s.receiveBuffer });
} catch (err) {
  port.postMessage({ type: 'error', message: (err as Error).message });
  process.exit(1);
}

const batch = new DatagramBatch(setup.batch, setup.maxDatagramBytes + 1);
let keysCheckedAt = performance.now();
let posted = 0;
let errorLogged = false;
try {
  while (Atomics.load(flags, 0) === 0) {
    const control = receiveMessageOnPort(port)?.message as
      | { type: 'resize'; bytes: number }
      | { type: 'reload' }
      | undefined;
    if (control?.type === 'resize')
      port.postMessage({ type: 'resized', receiveBuffer: setBatchReceiveBuffer(fd, control.bytes) });
    if (ring && (control?.type === 'reload' || performance.now() - keysCheckedAt > 1000)) {
      keysCheckedAt = performance.now();
      ring.reload();
    }
    const n = batch.receive(fd, MSG_WAITFORONE);
    // Woken by close(): what the shut-down socket returns is not a datagram.
    if (Atomics.load(flags, 0) !== 0) break;
    if (n <= 0) {
      if (n < 0 && -n !== EAGAIN && -n !== EINTR && !errorLogged) {
        errorLogged = true;
        port.postMessage({ type: 'failed', message: `recvmmsg: ${lastError().message}` });
      }
      continue;
    }
    const lengths = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      lengths[i] = batch.received(i);
      total += lengths[i]!;
    }
    stats[SHARED.datagrams]! += n;
    stats[SHARED.bytes]! += total;
    stats[SHARED.batches]!++;
    const mem = socketMemory(fd);
    if (mem) {
      stats[SHARED.kernelDrops] = mem.drops;
      stats[SHARED.socketPeak] = Math.max(stats[SHARED.socketPeak]!, mem.queued);
    }
    const waiting = posted - Number(Atomics.load(consumed, 0));
    if (waiting + total > setup.queueBytes) {
      stats[SHARED.queueDrops]! += n;
      continue;
    }
    stats[SHARED.queuePeak] = Math.max(stats[SHARED.queuePeak]!, waiting + total);
    const data = new Uint8Array(total);
    const verdicts = new Uint8Array(n).fill(UNCHECKED);
    for (let i = 0, at = 0; i < n; i++) {
      const len = lengths[i]!;
      const datagram = batch.data.subarray(i * batch.slotBytes, i * batch.slotBytes + len);
      if (ring && len <= setup.maxDatagramBytes) verdicts[i] = verdictOf(ring, datagram);
      data.set(datagram, at);
      at += len;
    }
    posted += total;
    port.postMessage({ type: 'batch', data, lengths, verdicts }, [
      data.buffer,
      lengths.buffer,
      verdicts.buffer,
    ]);
  }
} finally {
  closeBatchSocket(fd);
}
