/**
 * The UDP socket both STAMP ends use, set up for timing. What arrives is stamped by the
 * kernel, so a receive time is when the datagram came, not when Node got to it. What
 * leaves goes by sendto(2) on the socket's descriptor right after the clock is read: Node's
 * own send defers to the next tick and walks tens of microseconds of JavaScript first.
 *
 * The session-sender also warms the kernel's send path with a MSG_PROBE send (the route
 * looked up, nothing sent) just before: after the idle fifth of a second between probes a
 * cold path costs more than a veth's whole round trip. The reflector sends right after it
 * woke for the probe, as the kernel answers ping's echo. Measured beside ping on a veth
 * (medians of 50 probes at 5/s, ping 46 µs): neither warmed 63–72 µs, both 38 µs, the
 * sender only 44–52 µs (docs/mesh.md).
 */
import { createSocket, type Socket } from 'node:dgram';
import { errno, libc } from '../../../shared/libc.js';
import { fdOf, stampReceives } from '../../../shared/socket-options.js';
import { readClock } from './clock.js';
import { TIMESTAMP_OFFSET, writeNtpParts } from './packet.js';

const AF_INET = 2;
const MSG_PROBE = 0x10;
const SOCKADDR_IN_BYTES = 16;

export async function timingSocket(port: number, address?: string): Promise<Socket> {
  const socket = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  stampReceives(socket);
  return socket;
}

function sockaddr(address: string, port: number): Buffer {
  const sa = Buffer.alloc(SOCKADDR_IN_BYTES);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  Buffer.from(address.split('.').map(Number)).copy(sa, 4);
  return sa;
}

/**
 * Sends `packet` with the time now written into it, at once; `warm` first runs the kernel's
 * path with a MSG_PROBE send. Returns the send time, or an errno when the kernel refused
 * it (no route while a link is cut).
 */
export function sendTimed(
  socket: Socket,
  address: string,
  port: number,
  packet: Buffer,
  warm: boolean,
): { txNs: bigint } | { errno: number } {
  const fd = fdOf(socket);
  const to = sockaddr(address, port);
  if (fd !== undefined && warm) libc.sendto(fd, packet, 1, MSG_PROBE, to, to.length);
  const { sec, nsec } = readClock();
  writeNtpParts(packet, TIMESTAMP_OFFSET, sec, nsec);
  if (fd === undefined) socket.send(packet, port, address);
  else if (libc.sendto(fd, packet, packet.length, 0, to, to.length) < 0) return { errno: errno() };
  return { txNs: BigInt(sec) * 1_000_000_000n + BigInt(nsec) };
}
