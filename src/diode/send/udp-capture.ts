/**
 * The sender's UDP capture: per configured service, receive datagrams on a port and send
 * each across as one UDP frame, addressed to the service's destination on the far side.
 * UDP cannot be paused: when the send buffer is full the datagram is dropped and counted.
 */
import { createSocket, type Socket } from 'node:dgram';
import { diodeLog as log } from '../../shared/log.js';
import { started } from '../../shared/started.js';
import { addressBytes, encodeUdpPrefix, FrameType, type Importance } from '../protocol/frame.js';
import type { Aggregator } from './aggregator.js';

export interface UdpService {
  name: string;
  listen: { host: string; port: number };
  destination: { host: string; port: number };
  importance: Importance;
}

export class UdpCapture {
  private readonly sockets: Socket[] = [];
  counters = { received: 0, forwarded: 0, droppedBufferFull: 0, droppedTooLong: 0 };

  constructor(
    private readonly aggregator: Aggregator,
    private readonly services: UdpService[],
    private readonly newSessionId: () => number,
  ) {}

  async listen(): Promise<void> {
    for (const service of this.services) {
      const session = this.newSessionId();
      const prefix = encodeUdpPrefix(addressBytes(service.destination.host), service.destination.port);
      const socket = createSocket({ type: service.listen.host.includes(':') ? 'udp6' : 'udp4' });
      let seq = 0;
      socket.on('message', (msg) => {
        this.counters.received++;
        if (prefix.length + msg.length > this.aggregator.maxPayload) {
          this.counters.droppedTooLong++;
          return;
        }
        const sent = this.aggregator.offer({
          type: FrameType.Udp,
          importance: service.importance,
          session,
          seq: seq++,
          payload: Buffer.concat([prefix, msg]),
        });
        if (sent) this.counters.forwarded++;
        else this.counters.droppedBufferFull++;
      });
      await started(socket, (done) => socket.bind(service.listen.port, service.listen.host, done));
      this.sockets.push(socket);
      log.info({ service: service.name, listen: service.listen, to: service.destination }, 'udp service');
    }
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}
