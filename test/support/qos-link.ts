/**
 * Test fixtures for QoS: a host `h` behind a node `a` whose egress leads through a radio `r`
 * (a 10 Mbit/s FIFO, TBF) to a receiver `b`. Traffic is sent from `h`, so the node forwards
 * it as a mesh node does (a sender on the node itself would be held back by its socket
 * buffer instead of losing packets in the queue); iperf3 servers and a receiver that reports the DSCP each
 * datagram arrived with (IP_RECVTOS; python3 because Node's dgram cannot read it).
 */

import { cleanLeftovers, Lab } from '../../src/netlab/lab.js';
import { limitRate } from '../../src/netlab/link.js';
import type { QosEnforcer } from '../../src/node/qos/enforcer.js';
import type { QosClass, QosPolicy__Output, QosRule } from '../../src/proto/index.js';

export { iperfServer } from './iperf.js';

export const RADIO_MBIT = 10;
/** The node shapes a little under the radio's rate, so the queue forms in its HTB. */
export const LINK_BPS = 9_500_000;
export const RECEIVER = '10.77.181.2';

export interface QosLink {
  /** the sending host behind the node */
  h: string;
  a: string;
  r: string;
  b: string;
  /** a's interface toward the radio */
  uplink: string;
  /** the radio's interface toward b, where its rate is set */
  radio: string;
}

export async function makeQosLink(lab: Lab): Promise<QosLink> {
  const h = await lab.netns('h', { ipv6: false });
  const a = await lab.netns('a', { ipv6: false });
  const r = await lab.netns('r', { ipv6: false });
  const b = await lab.netns('b', { ipv6: false });
  const ar = await lab.veth({ netns: a, addr: '10.77.180.1/24' }, { netns: r, addr: '10.77.180.2/24' });
  const rb = await lab.veth({ netns: r, addr: '10.77.181.1/24' }, { netns: b, addr: '10.77.181.2/24' });
  await lab.veth({ netns: h, addr: '10.77.182.2/24' }, { netns: a, addr: '10.77.182.1/24' });
  for (const ns of [a, r]) await lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await lab.ip(h, 'route', 'add', 'default', 'via', '10.77.182.1');
  await lab.ip(a, 'route', 'add', '10.77.181.0/24', 'via', '10.77.180.2');
  await lab.ip(r, 'route', 'add', '10.77.182.0/24', 'via', '10.77.180.1');
  await lab.ip(b, 'route', 'add', '10.77.180.0/22', 'via', '10.77.181.1');
  await limitRate(lab, r, rb.a, RADIO_MBIT);
  return { h, a, r, b, uplink: ar.a, radio: rb.a };
}

/** A full policy from partial classes and rules (the wire's defaults filled in). */
export function policy(
  version: number,
  uplink: string,
  classes: QosClass[],
  rules: QosRule[],
): QosPolicy__Output {
  return {
    version,
    links: [{ iface: uplink, rateBps: LINK_BPS, limits: [] }],
    classes: classes.map((c) => ({
      name: c.name ?? '',
      priority: c.priority ?? 0,
      guaranteedBps: Number(c.guaranteedBps ?? 0),
      ceilingBps: Number(c.ceilingBps ?? 0),
      dscp: c.dscp ?? 0,
    })),
    rules: rules.map((r) => ({
      name: r.name ?? '',
      class: r.class ?? '',
      srcPrefixes: r.srcPrefixes ?? [],
      dstPrefixes: r.dstPrefixes ?? [],
      protocol: r.protocol ?? 0,
      dstPortMin: r.dstPortMin ?? 0,
      dstPortMax: r.dstPortMax ?? 0,
      srcPortMin: r.srcPortMin ?? 0,
      srcPortMax: r.srcPortMax ?? 0,
      matchDscp: r.matchDscp ?? -1,
      iface: r.iface ?? '',
      policeBps: Number(r.policeBps ?? 0),
      policeRemark: r.policeRemark ?? false,
      policeDscp: r.policeDscp ?? 0,
    })),
  };
}

export interface Iperf3Udp {
  end: { sum_received: { bits_per_second: number }; sum: { packets: number; lost_packets: number } };
}

/** The share of its datagrams a UDP iperf3 flow lost, as the server counted them: a count, not a rate. */
export function lostFraction(r: Iperf3Udp): number {
  return r.end.sum.packets > 0 ? r.end.sum.lost_packets / r.end.sum.packets : 1;
}

/** Mbit/s a UDP iperf3 flow got through to the receiver, as the server counted it. */
export function receivedMbit(r: Iperf3Udp): number {
  return r.end.sum_received.bits_per_second / 1e6;
}

/** A UDP flow of `seconds`, the first `omit` of them left out of the result. */
export async function iperfUdp(
  lab: Lab,
  from: string,
  port: number,
  mbit: number,
  seconds: number,
  omit = 0,
): Promise<Iperf3Udp> {
  const args = [
    '-c',
    RECEIVER,
    '-p',
    String(port),
    '-u',
    '-b',
    `${mbit}M`,
    '-l',
    '1200',
    '-t',
    String(seconds),
    '-O',
    String(omit),
    '-J',
  ];
  // iperf3 reports its own errors in the JSON it prints: keep them rather than the exit status
  const { stdout } = await lab.exec(from, 'iperf3', args, {
    timeoutMs: (seconds + omit + 15) * 1000,
    anyStatus: true,
  });
  const out = JSON.parse(stdout) as Iperf3Udp & { error?: string };
  if (out.error) throw new Error(`iperf3 to port ${port}: ${out.error}`);
  return out;
}

const TOS_RECEIVER = `
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(2048, 64)
    tos = next((c[2][0] for c in anc if c[0] == socket.IPPROTO_IP and c[1] == socket.IP_TOS), -1)
    seq = int.from_bytes(data[:8], "big") if len(data) >= 8 else -1
    print(json.dumps({"dscp": tos >> 2 if tos >= 0 else -1, "ms": time.time() * 1000, "seq": seq}), flush=True)
`;

export interface Received {
  dscp: number;
  ms: number;
  /** The paced sender's sequence number (the payload's first 8 bytes). */
  seq: number;
}

/** A receiver on `port` in `netns`; `seen` holds the DSCP, arrival time and seq of every datagram. */
export async function dscpReceiver(lab: Lab, netns: string, port: number) {
  const child = lab.spawn(netns, '/usr/bin/python3', ['-u', '-c', TOS_RECEIVER, String(port)]);
  const seen: Received[] = [];
  let buf = '';
  let ready = false;
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') ready = true;
      else if (line) seen.push(JSON.parse(line) as Received);
    }
  });
  for (let i = 0; i < 250 && !ready; i++) await new Promise((r) => setTimeout(r, 20));
  if (!ready) throw new Error('the DSCP receiver did not start');
  return { seen };
}

const PACED_SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst, pps, seconds, payload = (sys.argv[1], int(sys.argv[2])), float(sys.argv[3]), float(sys.argv[4]), b"x" * int(sys.argv[5])
t0, n = time.time(), 0
while time.time() - t0 < seconds:
    wait = t0 + n / pps - time.time()
    if wait > 0:
        time.sleep(wait)
    s.sendto(n.to_bytes(8, "big") + payload[8:], dst)
    n += 1
print(n, flush=True)
`;

/**
 * The share of the paced sender's datagrams lost among those that arrived in [fromMs, toMs):
 * the gaps in their sequence numbers, a count that does not depend on how busy the machine is.
 */
export function lostAmong(
  seen: Received[],
  fromMs: number,
  toMs: number,
): { lost: number; received: number } {
  const seqs = seen
    .filter((s) => s.ms >= fromMs && s.ms < toMs && s.seq >= 0)
    .map((s) => s.seq)
    .sort((a, b) => a - b);
  let lost = 0;
  for (let i = 1; i < seqs.length; i++) lost += Math.max(0, (seqs[i] ?? 0) - (seqs[i - 1] ?? 0) - 1);
  return { lost, received: seqs.length };
}

/** Datagrams of `size` bytes, numbered, to the receiver at an even `pps` for `seconds` (python3: exact pacing). */
export function pacedUdp(lab: Lab, netns: string, port: number, pps: number, seconds: number, size: number) {
  return lab.spawn(netns, '/usr/bin/python3', [
    '-c',
    PACED_SENDER,
    RECEIVER,
    String(port),
    String(pps),
    String(seconds),
    String(size),
  ]);
}

/** An Ethernet frame with a UDP datagram from h (10.77.182.2:40000) to the receiver, for BPF_PROG_TEST_RUN. */
export function udpFrame(dstPort: number, payload = 64, tos = 0): Buffer {
  const pkt = Buffer.alloc(14 + 20 + 8 + payload);
  pkt.writeUInt16BE(0x0800, 12);
  pkt[14] = 0x45;
  pkt[15] = tos;
  pkt.writeUInt16BE(20 + 8 + payload, 16);
  pkt[22] = 64;
  pkt[23] = 17;
  Buffer.from([10, 77, 182, 2]).copy(pkt, 26);
  Buffer.from(RECEIVER.split('.').map(Number)).copy(pkt, 30);
  pkt.writeUInt16BE(40000, 34);
  pkt.writeUInt16BE(dstPort, 36);
  pkt.writeUInt16BE(8 + payload, 38);
  return pkt;
}

/**
 * Runs `body` on a fresh QoS link; the enforcer it leaves in `held.qos` is closed and the
 * namespaces removed afterwards, whatever happened.
 */
export async function withQosLink(
  body: (lab: Lab, link: QosLink, held: { qos?: QosEnforcer }) => Promise<void>,
): Promise<void> {
  const lab = new Lab();
  const held: { qos?: QosEnforcer } = {};
  try {
    await body(lab, await makeQosLink(lab), held);
  } finally {
    await held.qos?.close();
    await lab.cleanup();
    await cleanLeftovers(new RegExp(`^${lab.prefix}`));
  }
}
