/**
 * A batch with one record of every kind, every field set (no null, no zero, no empty text):
 * what a store or sink test writes when it must see each column arrive. The route report
 * holds two routes, so it stores as two rows.
 */
import type { IngestBatch } from '../../src/tower/model.js';

export function fullBatch(node: string, firstSeq: number, timeMs: number): IngestBatch {
  const at = { node, timeMs, iface: 'pa', ifaceKind: 'vm' as const, ipVersion: 4 };
  return {
    node,
    firstSeq,
    lastSeq: firstSeq + 4,
    flows: [
      {
        ...at,
        seq: firstSeq,
        direction: 'egress',
        src: '10.77.151.1',
        dst: '10.77.152.1',
        srcPort: 40001,
        dstPort: 5201,
        protocol: 6,
        packets: 11,
        bytes: 12_000,
        tcpFlags: 0x18,
        dscp: 46,
        firstSeenMs: timeMs - 900,
        locality: 'inter',
        srcNode: 'n1',
        dstNode: 'n2',
      },
    ],
    http: [
      {
        ...at,
        seq: firstSeq + 1,
        direction: 'ingress',
        src: '10.77.151.1',
        dst: '10.77.152.1',
        srcPort: 40002,
        dstPort: 80,
        response: true,
        method: 'GET',
        url: '/status',
        host: 'srv.example',
        status: 503,
        version: '1.1',
        truncated: true,
        locality: 'inter',
      },
    ],
    stats: [
      {
        node,
        seq: firstSeq + 2,
        timeMs,
        activeFlows: 3,
        packetsSeen: 4,
        bytesSeen: 5,
        flowMapFull: 6,
        httpEvents: 7,
        eventsDropped: 8,
        malformed: 9,
        recordsLost: 10,
        l7SampledOut: 11,
      },
    ],
    links: [
      {
        node,
        seq: firstSeq + 3,
        timeMs,
        iface: 'mesh0',
        address: '10.77.200.1',
        neighbour: '10.77.200.2',
        state: 'degraded',
        why: ['loss 12 % forward'],
        sinceMs: timeMs - 5000,
        probesSent: 50,
        probesAnswered: 44,
        rttMinMs: 1.5,
        rttMeanMs: 2.5,
        rttP95Ms: 3.5,
        jitterMs: 0.5,
        lossForwardPct: 12,
        lossBackwardPct: 1,
        capacityBps: 20e6,
        maxCapacityBps: 54e6,
        capacityFrom: 'dlep',
        loadTxBps: 1000,
        loadRxBps: 2000,
        utilization: 0.0001,
        rttMedianMs: 2.4,
      },
    ],
    routes: [
      {
        node,
        seq: firstSeq + 4,
        timeMs,
        source: 'babel',
        routes: [
          {
            prefix: '10.77.152.0/24',
            via: '10.77.200.2',
            iface: 'mesh0',
            metric: 96,
            sinceMs: timeMs - 7000,
          },
          {
            prefix: '10.77.153.0/24',
            via: '10.77.200.2',
            iface: 'mesh0',
            metric: 352,
            sinceMs: timeMs - 6000,
          },
        ],
      },
    ],
  };
}
