/**
 * Headquarters behind a data diode (seeds 000 and 004 together): the tower forwards its flow
 * records as IPFIX (tower.yaml `forward`) to a diode sender in a namespace of its own beside
 * the tower; a strictly one-way link (linkem, tc mode: it outlives `testbed up`) carries them
 * to the HQ network, where the diode's receiver hands them to nfcapd. HQ has a route toward
 * the mesh, and still nothing of it arrives there: shown at start by probes back that must
 * not arrive. The tower reads the diode sender's metrics for the link's health as the sender
 * knows it.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateKey } from '../diode/protocol/auth.js';
import { Lab } from '../netlab/lab.js';
import { oneWayLink } from '../netlab/link.js';
import { type OneWayProof, proveOneWay } from '../netlab/one-way-proof.js';
import { startDetached } from '../netlab/processes.js';
import { run } from '../shared/exec.js';
import type { TestbedConfig } from './config.js';
import type { TestbedPlan } from './plan.js';

const IPFIX_PORT = 4739;
const METRICS_PORT = 9464;
const LINK_PORT = 47000;
const PROBE_PORT = 47999;
/** nfcapd starts a new file this often (s): what it holds can be read once the file is closed. */
export const ROTATE_S = 10;

export interface HqState {
  /** The probes at start: nothing from HQ reached the tower's side. */
  proof: OneWayProof;
  flowsDir: string;
  dir: string;
}

interface Where {
  prefix: string;
  dir: string;
  plan: TestbedPlan;
  config: TestbedConfig;
  pids: Record<string, number>;
}

const nsOf = (s: { prefix: string }, name: string) => `${s.prefix}-${name}`;

/** The tower's `forward` section: IPFIX to the diode sender, whose metrics say what it sent. */
export function towerForward(plan: TestbedPlan): Record<string, unknown> {
  return {
    label: 'headquarters',
    ipfix: `udp://${plan.hq.senderAddr}:${IPFIX_PORT}`,
    diodeMetrics: `http://${plan.hq.senderAddr}:${METRICS_PORT}/metrics`,
  };
}

/**
 * The network and processes of HQ: namespaces `dsend` (the diode sender, on the tower's
 * side) and `hq`, the veth from the tower, the one-way link, nfcapd, `tacmesh diode recv`
 * and `send`. Returns the one-way proof as a promise (it runs while the tower starts).
 */
export async function hqUp(
  lab: Lab,
  s: Where,
  towerNs: string,
  bin: string,
): Promise<{ proof: Promise<OneWayProof>; dir: string; flowsDir: string }> {
  const { hq } = s.plan;
  const dir = join(s.dir, 'hq');
  const flowsDir = join(dir, 'flows');
  mkdirSync(flowsDir, { recursive: true, mode: 0o700 });
  const dsend = await lab.netns('dsend');
  const hqNs = await lab.netns('hq');
  await lab.veth(
    { netns: towerNs, name: 'hq0', addr: `${hq.towerAddr}/30` },
    { netns: dsend, name: 'tower0', addr: `${hq.senderAddr}/30` },
  );
  const link = await oneWayLink(lab, dsend, hqNs, {
    fromAddr: `${hq.linkSendAddr}/30`,
    toAddr: `${hq.linkRecvAddr}/30`,
    rateMbit: s.config.hq.rateMbit,
    mode: 'tc',
  });
  await lab.ip(hqNs, 'addr', 'add', `${hq.collectorAddr}/24`, 'dev', 'lo');
  // A route toward the mesh: what HQ sends there is stopped by the link, not by a missing route.
  await lab.ip(hqNs, 'route', 'add', '10.77.0.0/16', 'via', hq.linkSendAddr);
  const proof = proveOneWay(lab, {
    protectedSide: { netns: towerNs, addr: hq.towerAddr },
    sender: { netns: dsend },
    receiver: { netns: hqNs, addr: hq.linkRecvAddr },
    port: PROBE_PORT,
  }).then((p) => {
    // The link's loss once the proof's forward control has gone through whole; then the
    // programs are let go but stay attached: the link stays one-way until `down`.
    link.forward.setLoss(s.config.hq.lossPct / 100);
    link.forward.release();
    link.backward.release();
    return p;
  });

  const keys = join(dir, 'keys.txt');
  generateKey(keys, 1);
  const fecLoss = Math.max(0.01, s.config.hq.lossPct / 100);
  const send = {
    link: {
      to: `${hq.linkRecvAddr}:${LINK_PORT}`,
      from: hq.linkSendAddr,
      rateMbit: s.config.hq.rateMbit * 0.98,
    },
    udp: [
      {
        name: 'ipfix',
        listen: `${hq.senderAddr}:${IPFIX_PORT}`,
        destination: `${hq.collectorAddr}:${IPFIX_PORT}`,
      },
    ],
    store: { dir: join(dir, 'send-store') },
    auth: { keyFile: keys },
    fec: { expectedLoss: fecLoss },
    metrics: { listen: `${hq.senderAddr}:${METRICS_PORT}` },
    stats: { file: join(dir, 'send-stats.json') },
  };
  const recv = {
    link: { listen: `${hq.linkRecvAddr}:${LINK_PORT}` },
    auth: { keyFile: keys },
    tcp: { allow: [`${hq.collectorAddr}:${IPFIX_PORT}`] },
    stateDir: join(dir, 'recv-state'),
    stats: { file: join(dir, 'recv-stats.json') },
  };
  writeFileSync(join(dir, 'send.yaml'), stringify(send), { mode: 0o600 });
  writeFileSync(join(dir, 'recv.yaml'), stringify(recv), { mode: 0o600 });
  const logs = join(s.dir, 'logs');
  s.pids['hq-nfcapd'] = startDetached(
    'hq-nfcapd',
    hqNs,
    'nfcapd',
    ['-w', flowsDir, '-b', hq.collectorAddr, '-p', String(IPFIX_PORT), '-t', String(ROTATE_S), '-I', 'tower'],
    logs,
  );
  for (const [role, netns] of [
    ['recv', hqNs],
    ['send', dsend],
  ] as const) {
    const name = `hq-diode-${role}`;
    s.pids[name] = startDetached(
      name,
      netns,
      process.execPath,
      [bin, 'diode', role, '-c', join(dir, `${role}.yaml`)],
      logs,
    );
  }
  return { proof, dir, flowsDir };
}

/** The proof again, while the testbed runs: probes from HQ toward the tower that must not arrive. */
export async function proveHqOneWay(s: { prefix: string; plan: TestbedPlan }): Promise<OneWayProof> {
  const lab = new Lab(s.prefix);
  return proveOneWay(lab, {
    protectedSide: { netns: nsOf(s, 'tower'), addr: s.plan.hq.towerAddr },
    sender: { netns: nsOf(s, 'dsend') },
    receiver: { netns: nsOf(s, 'hq'), addr: s.plan.hq.linkRecvAddr },
    port: PROBE_PORT,
  });
}

/**
 * What the HQ collector holds, from nfcapd's closed files: each flow record's end time (ms),
 * and until when the closed files cover (records that ended well before it are all in them).
 */
export async function hqFlows(
  hq: HqState,
): Promise<{ ends: number[]; files: number; coveredUntilMs: number }> {
  const closed = readdirSync(hq.flowsDir)
    .filter((f) => /^nfcapd\.\d{14}$/.test(f))
    .sort();
  const ends: number[] = [];
  for (const f of closed) {
    // %te, not %ter: nfdump 1.7.1 prints %ter's milliseconds wrong (.123 as .023).
    const { stdout } = await run('nfdump', ['-r', join(hq.flowsDir, f), '-q', '-N', '-o', 'fmt:%te']);
    for (const line of stdout.split('\n')) {
      const t = localTime(line.trim());
      if (t !== undefined) ends.push(t);
    }
  }
  // A file's name is its interval's start.
  const name = closed[closed.length - 1]?.slice('nfcapd.'.length) ?? '';
  const start = localTime(name.replace(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/, '$1-$2-$3 $4:$5:$6'));
  return { ends, files: closed.length, coveredUntilMs: start === undefined ? 0 : start + ROTATE_S * 1000 };
}

/** "2026-12-01 13:33:40.123" in local time (nfcapd's and nfdump's, the machine's), as ms. */
function localTime(text: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?$/.exec(text);
  if (!m) return undefined;
  const [y = 0, mo = 1, d, h, mi, sec, ms] = m.slice(1).map((x) => Number(x ?? 0));
  return new Date(y, mo - 1, d, h, mi, sec, ms).getTime();
}
