/**
 * Datagrams in batches: recvmmsg(2) and sendmmsg(2) through libc, one system call for a
 * batch instead of one per datagram; the UDP socket a batch reader opens itself (socket,
 * receive buffer, timeout, bind); and the socket's own counters (SO_MEMINFO: bytes queued,
 * datagrams the kernel dropped for want of buffer). Linux on 64-bit (LP64: x86-64, arm64).
 *
 * A `DatagramBatch` owns its memory (headers, iovecs and one slot per datagram, each slot
 * its own iovec), allocated outside the JavaScript heap so its addresses never move; what a
 * caller keeps of a slot it must copy, as the next call reuses it.
 */
import koffi from 'koffi';
import { errno, loadLibrary } from './libc.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
const SO_MEMINFO = 55;
/** SK_MEMINFO_RMEM_ALLOC, SK_MEMINFO_RCVBUF and SK_MEMINFO_DROPS in SO_MEMINFO's u32 array. */
const MEMINFO = { queued: 0, buffer: 1, drops: 8, count: 9 } as const;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_WAITFORONE = 0x10000;
export const EAGAIN = 11;
export const EINTR = 4;

/** struct mmsghdr: struct msghdr (56 bytes) and msg_len, padded to 64. */
const MMSGHDR_BYTES = 64;
const IOVEC_BYTES = 16;
const OFF = { iov: 16, iovlen: 24, flags: 48, len: 56 } as const;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: Buffer): number;
  recvmmsg(fd: number, vec: Buffer, vlen: number, flags: number, timeout: null): number;
  sendmmsg(fd: number, vec: Buffer, vlen: number, flags: number): number;
  inetPton(af: number, src: string, dst: Buffer): number;
  close(fd: number): number;
  shutdown(fd: number, how: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  strerror(e: number): string;
}

const c = loadLibrary('libc.so.6');
const lib: Libc = {
  socket: c.func('int socket(int domain, int type, int protocol)'),
  bind: c.func('int bind(int fd, void *addr, uint32_t len)'),
  setsockopt: c.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  getsockopt: c.func('int getsockopt(int fd, int level, int name, void *val, void *len)'),
  recvmmsg: c.func('int recvmmsg(int fd, void *vec, unsigned int vlen, int flags, void *timeout)'),
  sendmmsg: c.func('int sendmmsg(int fd, void *vec, unsigned int vlen, int flags)'),
  inetPton: c.func('int inet_pton(int af, const char *src, void *dst)'),
  close: c.func('int close(int fd)'),
  shutdown: c.func('int shutdown(int fd, int how)'),
  getsockname: c.func('int getsockname(int fd, void *addr, void *len)'),
  strerror: c.func('const char *strerror(int errnum)'),
};

/** The last call's errno as a message, e.g. "Address already in use". */
export function lastError(): { errno: number; message: string } {
  const e = errno();
  return { errno: e, message: lib.strerror(e) };
}

/** An errno as its message. */
export function errnoMessage(e: number): string {
  return lib.strerror(e);
}

export class DatagramBatch {
  readonly headers: Buffer;
  readonly data: Buffer;
  private readonly iovecs: Buffer;

  /** `capacity` datagrams of up to `slotBytes` each. */
  constructor(
    readonly capacity: number,
    readonly slotBytes: number,
  ) {
    this.headers = Buffer.allocUnsafeSlow(capacity * MMSGHDR_BYTES).fill(0);
    this.iovecs = Buffer.allocUnsafeSlow(capacity * IOVEC_BYTES).fill(0);
    this.data = Buffer.allocUnsafeSlow(capacity * slotBytes);
    const iov = koffi.address(this.iovecs);
    const data = koffi.address(this.data);
    for (let i = 0; i < capacity; i++) {
      const h = i * MMSGHDR_BYTES;
      this.headers.writeBigUInt64LE(iov + BigInt(i * IOVEC_BYTES), h + OFF.iov);
      this.headers.writeBigUInt64LE(1n, h + OFF.iovlen);
      this.iovecs.writeBigUInt64LE(data + BigInt(i * slotBytes), i * IOVEC_BYTES);
      this.iovecs.writeBigUInt64LE(BigInt(slotBytes), i * IOVEC_BYTES + 8);
    }
  }

  /** The slot of datagram `i` (its whole capacity). */
  slot(i: number): Buffer {
    return this.data.subarray(i * this.slotBytes, (i + 1) * this.slotBytes);
  }

  /** Bytes received into slot `i` (msg_len). */
  received(i: number): number {
    return this.headers.readUInt32LE(i * MMSGHDR_BYTES + OFF.len);
  }

  /** True when datagram `i` was longer than its slot (the kernel cut it). */
  truncated(i: number): boolean {
    return (this.headers.readInt32LE(i * MMSGHDR_BYTES + OFF.flags) & MSG_TRUNC) !== 0;
  }

  /** How many bytes of slot `i` a send takes. */
  lengthOf(i: number): number {
    return Number(this.iovecs.readBigUInt64LE(i * IOVEC_BYTES + 8));
  }

  /** Sets how many bytes of slot `i` a send takes. */
  setLength(i: number, bytes: number): void {
    this.iovecs.writeBigUInt64LE(BigInt(bytes), i * IOVEC_BYTES + 8);
  }

  /**
   * Receives up to `capacity` datagrams from `fd` (flags: MSG_WAITFORONE blocks for the
   * first only). Returns how many, or -errno.
   */
  receive(fd: number, flags: number): number {
    for (let i = 0; i < this.capacity; i++) this.headers.writeInt32LE(0, i * MMSGHDR_BYTES + OFF.flags);
    const n = lib.recvmmsg(fd, this.headers, this.capacity, flags, null);
    return n >= 0 ? n : -errno();
  }

  /** Sends slots `from`..`to` − 1 (their lengths set) on a connected socket; returns how many went, or -errno. */
  send(fd: number, from: number, to: number): number {
    const n = lib.sendmmsg(fd, this.headers.subarray(from * MMSGHDR_BYTES), to - from, 0);
    return n >= 0 ? n : -errno();
  }
}

export interface BatchSocketOptions {
  host: string;
  port: number;
  receiveBufferBytes: number;
  /** A blocking receive returns after this long without a datagram. */
  timeoutMs: number;
}

export interface BatchSocket {
  fd: number;
  /** What the receive buffer came out at (the kernel reports double what was set). */
  receiveBuffer: { requested: number; effective: number; forced: boolean };
}

function setInt(fd: number, name: number, value: number): boolean {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  return lib.setsockopt(fd, SOL_SOCKET, name, v, 4) === 0;
}

function getInt(fd: number, name: number): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  return lib.getsockopt(fd, SOL_SOCKET, name, v, len) === 0 ? v.readInt32LE(0) : 0;
}

/** Sets a socket's receive buffer: the ordinary way (capped by rmem_max), then forced (root). */
export function setBatchReceiveBuffer(fd: number, bytes: number): BatchSocket['receiveBuffer'] {
  setInt(fd, SO_RCVBUF, bytes);
  let forced = false;
  if (getInt(fd, SO_RCVBUF) < bytes) forced = setInt(fd, SO_RCVBUFFORCE, bytes);
  return { requested: bytes, effective: getInt(fd, SO_RCVBUF), forced };
}

/** What a socket holds and has dropped, from the kernel's own counters (SO_MEMINFO). */
export interface SocketMemory {
  /** Bytes queued for reading now (the kernel's accounting: about twice the datagrams' size). */
  queued: number;
  /** The receive buffer, as the kernel counts it. */
  buffer: number;
  /** Datagrams dropped on this socket since it opened because its buffer was full. */
  drops: number;
}

export function socketMemory(fd: number): SocketMemory | undefined {
  const v = Buffer.alloc(MEMINFO.count * 4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(v.length);
  if (lib.getsockopt(fd, SOL_SOCKET, SO_MEMINFO, v, len) !== 0 || len.readUInt32LE(0) < v.length)
    return undefined;
  return {
    queued: v.readUInt32LE(MEMINFO.queued * 4),
    buffer: v.readUInt32LE(MEMINFO.buffer * 4),
    drops: v.readUInt32LE(MEMINFO.drops * 4),
  };
}

/** A UDP socket bound to host:port for batch receiving; throws with errno's message. */
export function openBatchSocket(o: BatchSocketOptions): BatchSocket {
  const c = lib;
  const v6 = o.host.includes(':');
  const addr = Buffer.alloc(v6 ? 28 : 16);
  addr.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  addr.writeUInt16BE(o.port, 2);
  if (c.inetPton(v6 ? AF_INET6 : AF_INET, o.host, addr.subarray(v6 ? 8 : 4)) !== 1)
    throw new Error(`${o.host} is not an IP address`);
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket: ${lastError().message}`);
  try {
    const receiveBuffer = setBatchReceiveBuffer(fd, o.receiveBufferBytes);
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(o.timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((o.timeoutMs % 1000) * 1000), 8);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
    if (c.bind(fd, addr, addr.length) !== 0)
      throw new Error(`bind ${o.host}:${o.port}: ${lastError().message}`);
    return { fd, receiveBuffer };
  } catch (err) {
    c.close(fd);
    throw err;
  }
}

/** The port a socket is bound to (bound to port 0: the one the kernel chose). */
export function boundPort(fd: number): number {
  const addr = Buffer.alloc(28);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(addr.length);
  if (lib.getsockname(fd, addr, len) !== 0) throw new Error(`getsockname: ${lastError().message}`);
  return addr.readUInt16BE(2);
}

export function closeBatchSocket(fd: number): void {
  lib.close(fd);
}

/** Wakes a thread blocked receiving on `fd` (it gets 0 datagrams); the socket stays open. */
export function wakeBatchSocket(fd: number): void {
  lib.shutdown(fd, 2 /* SHUT_RDWR */);
}
