/**
 * The proof a one-way link is shown with before it carries anything: UDP datagrams, a TCP
 * connection and pings sent back from the receiving side must not arrive, while the same
 * datagrams sent forward all do (so the probe itself works).
 */
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab.js';
import { toolPath } from './tools/index.js';

export interface OneWayProof {
  /** From the receiving side to `target`: what was tried, and what arrived (must be 0). */
  backward: {
    target: string;
    udpSent: number;
    udpArrived: number;
    tcp: string;
    tcpArrived: number;
    pingsSent: number;
    pingsAnswered: number;
  };
  /** The control: datagrams from the sending side to the receiver, all of which arrive. */
  forward: { target: string; udpSent: number; udpArrived: number };
  /** True when nothing came back and everything went forward. */
  oneWay: boolean;
}

export interface ProofEnds {
  /** Where the probe listens on the protected side, and the side that must be unreachable from the receiver. */
  protectedSide: { netns: string; addr: string };
  /** The sending end of the link (where the forward control starts). */
  sender: { netns: string };
  /** The receiving end (where the backward probe starts and the forward control listens). */
  receiver: { netns: string; addr: string };
  port: number;
  count?: number;
}

function lastJson<T>(text: string): T {
  const line = text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`the probe printed no result: ${text.slice(0, 300)}`);
  return JSON.parse(line) as T;
}

function output(child: ChildProcess): { text: () => string; exited: Promise<void> } {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { text: () => text, exited };
}

async function listen(lab: Lab, netns: string, addr: string, port: number) {
  const child = lab.spawnNode(netns, toolPath('probe'), ['listen', addr, String(port)]);
  const out = output(child);
  const deadline = Date.now() + 10_000;
  while (!out.text().includes('ready')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the probe listener in ${netns} did not start: ${out.text().slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async counts(): Promise<{ udp: number; tcp: number }> {
      // A datagram on its way when the sender finished has a moment to land.
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGTERM');
      await out.exited;
      return lastJson(out.text());
    },
  };
}

async function send(lab: Lab, netns: string, addr: string, port: number, count: number) {
  const child = lab.spawnNode(netns, toolPath('probe'), ['send', addr, String(port), String(count)]);
  const out = output(child);
  await out.exited;
  return lastJson<{ udpSent: number; tcp: string }>(out.text());
}

export async function proveOneWay(lab: Lab, ends: ProofEnds): Promise<OneWayProof> {
  const count = ends.count ?? 20;
  const [back, fwd] = await Promise.all([
    listen(lab, ends.protectedSide.netns, ends.protectedSide.addr, ends.port),
    listen(lab, ends.receiver.netns, ends.receiver.addr, ends.port),
  ]);
  const [sentBack, sentFwd, ping] = await Promise.all([
    send(lab, ends.receiver.netns, ends.protectedSide.addr, ends.port, count),
    send(lab, ends.sender.netns, ends.receiver.addr, ends.port, count),
    lab.exec(
      ends.receiver.netns,
      'ping',
      ['-c', '3', '-i', '0.2', '-W', '1', '-n', ends.protectedSide.addr],
      {
        anyStatus: true,
      },
    ),
  ]);
  const [gotBack, gotFwd] = await Promise.all([back.counts(), fwd.counts()]);
  const answered = Number(/(\d+) received/.exec(ping.stdout)?.[1] ?? 0);
  const proof: OneWayProof = {
    backward: {
      target: ends.protectedSide.addr,
      udpSent: sentBack.udpSent,
      udpArrived: gotBack.udp,
      tcp: sentBack.tcp,
      tcpArrived: gotBack.tcp,
      pingsSent: 3,
      pingsAnswered: answered,
    },
    forward: { target: ends.receiver.addr, udpSent: sentFwd.udpSent, udpArrived: gotFwd.udp },
    oneWay: false,
  };
  proof.oneWay =
    gotBack.udp === 0 &&
    gotBack.tcp === 0 &&
    sentBack.tcp !== 'connected' &&
    answered === 0 &&
    sentFwd.udpSent === count &&
    gotFwd.udp === count;
  return proof;
}

/** The proof in two lines, for a progress message. */
export function describeProof(p: OneWayProof): string {
  const b = p.backward;
  return [
    `back to ${b.target}: ${b.udpArrived} of ${b.udpSent} UDP datagrams arrived, TCP connect ${b.tcp}, ${b.pingsAnswered} of ${b.pingsSent} pings answered`,
    `forward to ${p.forward.target} (the control): ${p.forward.udpArrived} of ${p.forward.udpSent} arrived — ${p.oneWay ? 'one-way: nothing crosses back' : 'NOT ONE-WAY'}`,
  ].join('\n');
}
