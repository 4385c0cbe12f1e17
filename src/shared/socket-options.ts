/**
 * The socket options Node does not expose, set through libc on the socket's descriptor:
 * a receive buffer beyond net.core.rmem_max (SO_RCVBUFFORCE, root only), an abortive close
 * (SO_LINGER 0: a crash resets the destination connection instead of ending it cleanly),
 * TCP_INFO for the RTT and window of a session, the DSCP of what a UDP socket sends, and
 * the kernel's receive time of the last datagram a UDP socket delivered (SIOCGSTAMPNS).
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Socket as TcpSocket } from 'node:net';
import koffi from 'koffi';
import { loadLibrary } from './libc.js';

const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const SO_LINGER = 13;
const IPPROTO_TCP = 6;
const IPPROTO_IP = 0;
const IP_TOS = 1;
const TCP_INFO = 11;
/** struct timespec of the last datagram read (x86-64 and arm64: two 64-bit longs). */
const SIOCGSTAMPNS = 0x8907;
const ENOENT = 2;

let lib:
  | {
      setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
      getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
      ioctl: (fd: number, req: number, type: string, arg: Buffer) => number;
    }
  | undefined;

function libc() {
  if (!lib) {
    const c = loadLibrary('libc.so.6');
    lib = {
      setsockopt: c.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
      getsockopt: c.func('int getsockopt(int fd, int level, int name, void *val, void *len)'),
      ioctl: c.func('int ioctl(int fd, unsigned long req, ...)'),
    };
  }
  return lib;
}

/**
 * The descriptor behind a Node socket (Linux; undefined before it is open). Node keeps it
 * on the handle: `_handle` for TCP, the 'state symbol' record for UDP (whose `_handle`
 * getter is deprecated).
 */
export function fdOf(socket: UdpSocket | TcpSocket): number | undefined {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state
    ? (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[state]?.handle
    : (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export interface ReceiveBufferReport {
  requested: number;
  /** What the kernel granted (it reports double what was set, for its own bookkeeping). */
  effective: number;
  rmemMax: number;
  forced: boolean;
  /** True when the socket got less than asked for. */
  short: boolean;
}

export function rmemMax(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  } catch {
    return 0;
  }
}

/**
 * Sets a bound UDP socket's receive buffer to `bytes`: first the ordinary way (capped by
 * net.core.rmem_max), then with SO_RCVBUFFORCE, which root may use to pass the cap.
 */
export function setReceiveBuffer(socket: UdpSocket, bytes: number): ReceiveBufferReport {
  const max = rmemMax();
  try {
    socket.setRecvBufferSize(bytes);
  } catch {
    // capped or refused; the forced route below says what we got
  }
  let forced = false;
  if (socket.getRecvBufferSize() < bytes) {
    const fd = fdOf(socket);
    const val = Buffer.alloc(4);
    val.writeInt32LE(bytes);
    if (fd !== undefined && libc().setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, val, 4) === 0) forced = true;
  }
  const effective = socket.getRecvBufferSize();
  return { requested: bytes, effective, rmemMax: max, forced, short: effective < bytes };
}

/** SO_LINGER on with 0 s (`abortive`): closing — or dying — sends RST, not FIN. Off again for a clean end. */
export function setAbortiveClose(socket: TcpSocket, abortive: boolean): boolean {
  const fd = fdOf(socket);
  if (fd === undefined) return false;
  const val = Buffer.alloc(8);
  val.writeInt32LE(abortive ? 1 : 0, 0);
  val.writeInt32LE(0, 4);
  return libc().setsockopt(fd, SOL_SOCKET, SO_LINGER, val, 8) === 0;
}

export interface TcpInfo {
  /** Smoothed RTT in microseconds (on an accepting socket, first measured on the handshake). */
  rttUs: number;
  /** The receiver's RTT estimate in microseconds (0 when the kernel has none). */
  rcvRttUs: number;
  /** The receive space: the window the kernel is working with, in bytes. */
  rcvSpace: number;
}

export function tcpInfo(socket: TcpSocket): TcpInfo | undefined {
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  const info = Buffer.alloc(104);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  if (libc().getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, len) !== 0) return undefined;
  return { rttUs: info.readUInt32LE(68), rcvRttUs: info.readUInt32LE(92), rcvSpace: info.readUInt32LE(96) };
}

/** Marks what a bound UDP socket sends with `dscp` (the upper six bits of the TOS byte). */
export function setDscp(socket: UdpSocket, dscp: number): boolean {
  const fd = fdOf(socket);
  if (fd === undefined) return false;
  const val = Buffer.alloc(4);
  val.writeInt32LE((dscp & 0x3f) << 2);
  return libc().setsockopt(fd, IPPROTO_IP, IP_TOS, val, 4) === 0;
}

/**
 * Asks the kernel to stamp what `socket` receives: the first SIOCGSTAMPNS turns stamping on
 * (and finds nothing yet). Without SO_TIMESTAMPNS, so each read records its datagram's
 * stamp on the socket for `receivedAtNs`, rather than in control messages libuv drops.
 */
export function stampReceives(socket: UdpSocket): boolean {
  const fd = fdOf(socket);
  if (fd === undefined) return false;
  const ts = Buffer.alloc(16);
  return libc().ioctl(fd, SIOCGSTAMPNS, 'void *', ts) === 0 || koffi.errno() === ENOENT;
}

/**
 * When the kernel received the datagram `socket` delivered last, in Unix nanoseconds
 * (CLOCK_REALTIME); undefined when it has no stamp. Called in the 'message' handler, which
 * Node runs before it reads the next datagram.
 */
export function receivedAtNs(socket: UdpSocket): bigint | undefined {
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  const ts = Buffer.alloc(16);
  if (libc().ioctl(fd, SIOCGSTAMPNS, 'void *', ts) !== 0) return undefined;
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}
