import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import type { FlowRow, IngestBatch } from '../model.js';
import { linkState, parseDiodeMetrics } from './diode-link.js';
import { IpfixForward } from './ipfix-forward.js';

const flow = (seq: number, dst = '10.77.12.10'): FlowRow => ({
  node: 'n1',
  seq,
  timeMs: 1_800_000_000_000 + seq,
  iface: 'mesh-n2',
  ifaceKind: 'host',
  direction: 'egress',
  ipVersion: 4,
  src: '10.77.11.20',
  dst,
  srcPort: 40000 + seq,
  dstPort: 80,
  locality: 'inter',
  protocol: 6,
  packets: 3,
  bytes: 300,
  tcpFlags: 0x18,
  dscp: 0,
  firstSeenMs: 1_800_000_000_000,
  srcNode: 'n1',
  dstNode: 'n2',
});
const batch = (flows: FlowRow[]): IngestBatch => ({
  node: 'n1',
  firstSeq: flows[0]?.seq ?? 0,
  lastSeq: flows[flows.length - 1]?.seq ?? 0,
  flows,
  http: [],
  stats: [],
  links: [],
  routes: [],
});

test('IPFIX forward: each stored routable flow once, over UDP', async () => {
  const socket = createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const fwd = new IpfixForward({ host: '127.0.0.1', port: socket.address().port });
  fwd.start();
  try {
    fwd.batch(batch([flow(1), flow(2), flow(3, '224.0.0.117')]));
    fwd.batch(batch([flow(2), flow(4)])); // a node's resend, with one new record
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      { records: fwd.counters.records, resent: fwd.counters.resent, notRoutable: fwd.counters.notRoutable },
      { records: 3, resent: 1, notRoutable: 1 },
    );
    // The IPFIX header's sequence counts data records sent before each message.
    assert.equal(got.length, 2);
    assert.deepEqual(
      got.map((m) => [m.readUInt16BE(0), m.readUInt32BE(8)]),
      [
        [10, 0],
        [10, 2],
      ],
    );
  } finally {
    fwd.stop();
    socket.close();
  }
});

const METRICS = (hb: number, dropped: number) => `# HELP tacmesh_diode_heartbeats_total heartbeats sent
tacmesh_diode_heartbeats_total{role="sender"} ${hb}
tacmesh_diode_datagrams_total{role="sender"} ${hb * 100}
tacmesh_diode_link_rate_mbit{role="sender"} 9.8
tacmesh_diode_udp_datagrams_total{outcome="forwarded",role="sender"} ${hb * 90}
tacmesh_diode_udp_datagrams_total{outcome="dropped_buffer_full",role="sender"} ${dropped}
tacmesh_diode_unexpected_inbound_total{role="sender"} 0
`;

test("the diode link's health from its sender's metrics", () => {
  const a = parseDiodeMetrics(METRICS(10, 0));
  assert.equal(a.rateMbit, 9.8);
  assert.equal(a.udpForwarded, 900);
  assert.equal(linkState(a, null, 0).state, 'starting');
  assert.equal(linkState(parseDiodeMetrics(METRICS(12, 0)), a, 2).state, 'sending');
  assert.equal(linkState(parseDiodeMetrics(METRICS(12, 5)), a, 2).state, 'dropping');
  assert.equal(linkState(parseDiodeMetrics(METRICS(10, 0)), a, 2).state, 'stalled');
  assert.throws(() => parseDiodeMetrics('node_cpu 1\n'), /not the metrics of a tacmesh diode sender/);
});
