import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { NodeTowerLab, sleep, waitFor } from '../../../test/support/node-tower.js';
import { Tool, toolPath } from '../../../test/support/tools/index.js';
import { stopChild } from '../../netlab/lab.js';
import { run } from '../../shared/exec.js';
import { requirePrograms } from '../../shared/programs.js';
import { flowData, messages, PEN, templateSet } from './ipfix.js';

const PORT = 5001;
const BYTES = 3_000_000;

let t: NodeTowerLab;
before(async () => {
  t = new NodeTowerLab(175, 176);
  await t.start();
});
after(async () => {
  await t?.stop();
});

/** A known TCP transfer cl → n1:PORT; resolves when the sink counted every byte. */
async function transfer(): Promise<void> {
  const sink = new Tool(t.lab.spawnNode(t.n1, toolPath('tcp'), ['sink', String(PORT), t.server]));
  await sink.line('ready');
  await new Tool(
    t.lab.spawnNode(t.cl, toolPath('tcp'), ['send', t.server, String(PORT), String(BYTES)]),
  ).result();
  assert.deepEqual(await sink.result(), { bytes: BYTES });
}

/** Starts node1 and waits until new records of it reach the tower: its monitor is attached and exporting. */
async function startReporting(extra: string[]) {
  const stored = (await t.seqs()).length;
  const node = t.startNode(extra);
  await waitFor(
    'the node reporting to the tower',
    async () => ((await t.seqs()).length > stored ? true : undefined),
    30_000,
  );
  return node;
}

/** The monitor's own account of the transfer, as the tower stored it: per direction. */
interface Account {
  records: number;
  packets: number;
  toServer: number;
  toClient: number;
}
async function measured(): Promise<Account> {
  const [r] = await t.query<Account>(`
    SELECT count(*)::DOUBLE AS records, coalesce(sum(packets), 0)::DOUBLE AS packets,
           coalesce(sum(bytes) FILTER (WHERE dst_port = ${PORT}), 0)::DOUBLE AS toServer,
           coalesce(sum(bytes) FILTER (WHERE src_port = ${PORT}), 0)::DOUBLE AS toClient
    FROM flows WHERE node = 'node1' AND (dst_port = ${PORT} OR src_port = ${PORT})`);
  return r as Account;
}

test('over UDP to nfcapd: the flows and bytes nfdump shows equal what the monitor measured', async () => {
  const dir = `${t.dir}/nfcapd`;
  mkdirSync(dir);
  requirePrograms(['nfcapd', 'nfdump'], 'the IPFIX collector');
  const nfcapd = spawn('nfcapd', ['-w', dir, '-b', t.mgmtTower, '-p', '9995', '-t', '3600'], {
    stdio: 'pipe',
  });
  let nfErr = '';
  nfcapd.stderr.on('data', (d: Buffer) => {
    nfErr += d.toString();
  });
  try {
    await sleep(500);
    assert.equal(nfcapd.exitCode, null, `nfcapd runs: ${nfErr}`);
    const node = await startReporting(['--ipfix', `udp://${t.mgmtTower}:9995`]);
    await transfer();
    // Until the tower holds every payload byte and an export interval adds nothing more:
    // the same intervals went to nfcapd.
    let last = '';
    await waitFor(
      'the transfer exported whole',
      async () => {
        const now = await measured();
        const same = JSON.stringify(now) === last;
        last = JSON.stringify(now);
        if (now.toServer >= BYTES && same) return true;
        await sleep(1500);
        return undefined;
      },
      60_000,
    );
    node.child.kill('SIGTERM');
    await node.exited;
  } finally {
    await stopChild(nfcapd);
  }
  const { stdout } = await run('nfdump', [
    '-R',
    dir,
    '-q',
    '-N',
    '-o',
    'fmt:%sa,%da,%sp,%dp,%pr,%pkt,%byt',
    `port ${PORT}`,
  ]);
  const rows = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(',').map((f) => f.trim()));
  const sum = (pick: (r: string[]) => boolean) => rows.filter(pick).reduce((n, r) => n + Number(r[6]), 0);
  const seen: Account = {
    records: rows.length,
    packets: rows.reduce((n, r) => n + Number(r[5]), 0),
    toServer: sum((r) => r[3] === String(PORT)),
    toClient: sum((r) => r[2] === String(PORT)),
  };
  const monitor = await measured();
  console.log(JSON.stringify({ nfdump: seen, monitor }));
  assert.ok(
    rows.every((r) => r[4] === '6' || r[4] === 'TCP'),
    'TCP flows',
  );
  assert.ok(
    rows.some((r) => r[0] === '10.77.176.1' && r[1] === t.server),
    'with their addresses',
  );
  assert.ok(monitor.toServer >= BYTES, 'the monitor saw every payload byte (and the headers)');
  assert.deepEqual(seen, monitor, 'nfdump shows the records and bytes the monitor measured');
});

test('over TCP: templates first (with the enterprise HTTP elements), then flow and HTTP records', async () => {
  const received: Buffer[] = [];
  const server: Server = createServer((s) => s.on('data', (d: Buffer) => received.push(d)));
  await new Promise<void>((r) => server.listen(4739, t.mgmtTower, r));
  try {
    const node = await startReporting(['--ipfix', `tcp://${t.mgmtTower}:4739`]);
    const got = await new Tool(
      t.lab.spawnNode(t.cl, toolPath('http'), ['get', `http://${t.server}`, '/ipfix/over/tcp']),
    ).result<{ statuses: number[] }>();
    assert.deepEqual(got.statuses, [200]);
    await waitFor(
      'the HTTP record over TCP',
      async () => (Buffer.concat(received).includes(Buffer.from('/ipfix/over/tcp')) ? true : undefined),
      30_000,
    );
    node.child.kill('SIGTERM');
    await node.exited;
  } finally {
    server.close();
  }
  const stream = Buffer.concat(received);
  const sets = new Map<number, Buffer[]>();
  let sequence = -1;
  for (let at = 0; at < stream.length; ) {
    assert.equal(stream.readUInt16BE(at), 10, 'IPFIX version 10');
    const length = stream.readUInt16BE(at + 2);
    const seq = stream.readUInt32BE(at + 8);
    assert.ok(seq >= sequence, 'sequence numbers do not go back');
    sequence = seq;
    for (let s = at + 16; s < at + length; ) {
      const id = stream.readUInt16BE(s);
      const len = stream.readUInt16BE(s + 2);
      sets.set(id, [...(sets.get(id) ?? []), stream.subarray(s + 4, s + len)]);
      s += len;
    }
    at += length;
  }
  const templates = sets.get(2)?.[0];
  assert.ok(templates, 'a template set');
  assert.equal(templates.readUInt16BE(0), 256, 'the first template is the IPv4 flow one');
  assert.ok(
    templates.includes(Buffer.from([0x80, 0x01, 0xff, 0xff, 0, 0, 0x7e, 0xd9])),
    'httpMethod, PEN 32473',
  );
  assert.equal(PEN, 0x7ed9);
  assert.ok((sets.get(256) ?? []).length > 0, 'IPv4 flow records');
  const http = Buffer.concat(sets.get(258) ?? []);
  assert.ok(http.includes(Buffer.from('/ipfix/over/tcp')), 'the URL in an HTTP record');
  assert.ok(http.includes(Buffer.from('GET')), 'and its method');
});

test('messages stay within one datagram and count their records', () => {
  const rec = flowData({
    node: 'n',
    iface: 'x',
    direction: 'ingress',
    ipVersion: 4,
    src: '10.77.176.1',
    dst: '10.77.176.254',
    srcPort: 1,
    dstPort: 2,
    protocol: 6,
    packets: 3,
    bytes: 400,
    tcpFlags: 0x12,
    dscp: 46,
    firstSeen: 1,
    lastSeen: 2,
  });
  const out = messages(Array(200).fill(rec), { sequence: 7, exportTimeS: 1 }, templateSet());
  assert.equal(out.records, 200);
  assert.ok(out.messages.length > 1);
  for (const m of out.messages) {
    assert.ok(m.length <= 1400);
    assert.equal(m.readUInt16BE(2), m.length, 'the header holds the message length');
  }
  assert.equal(
    out.messages[1]?.readUInt32BE(8),
    7 + (out.messages.length > 1 ? Math.floor((1400 - 16 - templateSet().length - 4) / rec.data.length) : 0),
  );
});
