/**
 * The receiver's UDP output: each UDP frame's datagram goes out to the destination it
 * names, from a socket of its own (never the link socket).
 */
import { createSocket, type Socket } from 'node:dgram';
import { decodeUdp, type Frame } from '../protocol/frame.js';

export class UdpDelivery {
  private v4: Socket | undefined;
  private v6: Socket | undefined;
  readonly counters = { delivered: 0, bytes: 0, malformed: 0, notAllowed: 0, errors: 0 };

  constructor(private readonly allow?: Set<string>) {}

  deliver(frame: Frame): void {
    const udp = decodeUdp(frame.payload);
    if (!udp) {
      this.counters.malformed++;
      return;
    }
    if (this.allow && !this.allow.has(`${udp.host}:${udp.port}`)) {
      this.counters.notAllowed++;
      return;
    }
    try {
      this.socketFor(udp.host).send(udp.data, udp.port, udp.host, (err) => {
        if (err) this.counters.errors++;
      });
    } catch {
      // dgram.send throws synchronously on what it cannot send: that datagram only
      this.counters.errors++;
      return;
    }
    this.counters.delivered++;
    this.counters.bytes += udp.data.length;
  }

  close(): void {
    this.v4?.close();
    this.v6?.close();
  }

  private socketFor(host: string): Socket {
    if (host.includes(':')) {
      this.v6 ??= createSocket('udp6');
      return this.v6;
    }
    this.v4 ??= createSocket('udp4');
    return this.v4;
  }
}
