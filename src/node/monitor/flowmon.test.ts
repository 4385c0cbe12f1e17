/**
 * Flowmon's run-time steering in global data: the programs look an interface up in
 * flowmon_ifaces only while some interface is disabled, so the disabled count user space
 * keeps in the config must follow every enable/disable. Which TCP segments the HTTP check
 * looks at, from the direction's first payload on. Driven by BPF_PROG_TEST_RUN, whose
 * packets come from loopback (ifindex 1): the watched interface is the loopback of a
 * namespace this test creates, which has ifindex 1 as well.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { TCP_SYN, tcpFrame } from '../../../bench/monitor/packets.js';
import { Lab } from '../../netlab/lab.js';
import { MonotonicClock, TickClock } from './clock.js';
import { FlowTable } from './flow-table.js';
import { Flowmon, flowmonConfigMap } from './flowmon.js';

/** CONFIG_HZ of the running kernel, from its own config (/proc/config.gz). */
function kernelHz(): number {
  let config: string;
  try {
    config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    throw new Error(
      'this test reads CONFIG_HZ from /proc/config.gz, which this kernel lacks (CONFIG_IKCONFIG_PROC)',
    );
  }
  const hz = /^CONFIG_HZ=(\d+)$/m.exec(config)?.[1];
  assert.ok(hz, 'CONFIG_HZ in /proc/config.gz');
  return Number(hz);
}

let lab: Lab;
let ns: string;
before(async () => {
  lab = new Lab();
  ns = await lab.netns('fm', { ipv6: false });
});
after(() => lab.cleanup());

test('disabling an interface stops its accounting, enabling resumes it; the config counts the disabled', () => {
  const fm = new Flowmon({ l3: true, l4: true, l7: true, sample: 1 }, { netns: ns });
  try {
    fm.watch('lo');
    const prog = fm.obj.program('flowmon_egress');
    const frame = tcpFrame(40000, 5201, 'x');
    const seen = () => Number(fm.counts().packetsSeen);
    const config = () => flowmonConfigMap(fm.obj).lookup(0);

    prog.testRun(frame, 10);
    assert.equal(seen(), 10);
    assert.equal(config()?.ifacesDisabled, 0);

    fm.setInterfaceEnabled('lo', false);
    assert.equal(config()?.ifacesDisabled, 1);
    prog.testRun(frame, 10);
    assert.equal(seen(), 10, 'nothing counted while disabled');

    fm.configure({ l3: true, l4: false, l7: true, sample: 5 });
    assert.deepEqual(config(), { metrics: 5, l7Sample: 5, ifacesDisabled: 1 }, 'settings keep the count');

    fm.setInterfaceEnabled('lo', true);
    assert.equal(config()?.ifacesDisabled, 0);
    prog.testRun(frame, 10);
    assert.equal(seen(), 20);
    assert.deepEqual(fm.settings(), { l3: true, l4: false, l7: true, sample: 5 });
  } finally {
    fm.close();
  }
});

test('HTTP: a direction whose first payload is not HTTP is not looked at again; one begun unseen is', () => {
  const fm = new Flowmon({ l3: true, l4: true, l7: true, sample: 1 }, { netns: ns });
  try {
    const prog = fm.obj.program('flowmon_egress');
    const events = () => Number(fm.counts().httpEvents);
    const send = (port: number, seq: number, payload: string, flags?: number) =>
      prog.testRun(tcpFrame(port, 80, payload, { seq, ...(flags ? { flags } : {}) }));
    const get = 'GET /late HTTP/1.1\r\nHost: h\r\n\r\n';

    // SYN seen, then a first payload that is something else (a TLS record, a cookie)
    send(41000, 1000, '', TCP_SYN);
    send(41000, 1001, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc');
    send(41000, 1010, get);
    assert.equal(events(), 0, 'a later GET on a non-HTTP connection is not an event');

    // SYN seen, HTTP first: every request on the connection
    send(41001, 5000, '', TCP_SYN);
    send(41001, 5001, 'GET /1 HTTP/1.1\r\n\r\n');
    send(41001, 5021, 'GET /2 HTTP/1.1\r\n\r\n');
    assert.equal(events(), 2, 'both requests of a keep-alive connection');

    // A new connection on the same ports opens the direction again
    send(41000, 9000, '', TCP_SYN);
    send(41000, 9001, get);
    assert.equal(events(), 3, 'the next connection on the same ports is looked at');

    // Its start unseen (the monitor began later): every write start, as before
    send(41002, 7000, 'xxxxxxxxxxxx');
    send(41002, 7012, get);
    assert.equal(events(), 4, 'a connection begun before the monitor: its requests are seen');

    // First payload shorter than 8 bytes (a SOCKS greeting): not settled, looked at on
    send(41003, 3000, '', TCP_SYN);
    send(41003, 3001, '\x05\x01\x00');
    send(41003, 3004, get);
    assert.equal(events(), 5, 'after a short first payload the requests are seen');
  } finally {
    fm.close();
  }
});

test('flow times: jiffies from the kernel become wall-clock milliseconds, at the kernel tick', async () => {
  const fm = new Flowmon({ l3: true, l4: true, l7: false, sample: 1 }, { netns: ns });
  try {
    fm.watch('lo');
    const ticks = new TickClock(() => fm.clockSample());
    ticks.calibrate();
    assert.equal(ticks.tickLengthMs, 1000 / kernelHz(), 'the measured tick is 1/CONFIG_HZ');
    const table = new FlowTable(fm.obj.map('flowmon_flows'), new MonotonicClock(), ticks, {
      node: 't',
      idleTimeoutMs: 60_000,
      ifaceName: fm.ifaceName,
    });
    const before = Date.now();
    fm.obj.program('flowmon_egress').testRun(tcpFrame(40000, 5201, 'x'), 3);
    await new Promise((r) => setTimeout(r, 300));
    fm.obj.program('flowmon_egress').testRun(tcpFrame(40000, 5201, 'x'), 2);
    const after = Date.now();
    const [flow, ...others] = table.read();
    assert.equal(others.length, 0);
    assert.ok(flow);
    assert.equal(flow.packets, 5);
    // A tick clock lags by at most a tick; a wrong mapping is off by seconds or by days.
    const tick = ticks.tickLengthMs;
    assert.ok(
      flow.firstSeen >= before - tick - 1 && flow.firstSeen <= before + 300,
      `firstSeen ${flow.firstSeen - before} ms after the first packet`,
    );
    assert.ok(
      flow.lastSeen >= after - 300 - tick - 1 && flow.lastSeen <= after + 1,
      `lastSeen ${after - flow.lastSeen} ms before the second batch ended`,
    );
    assert.ok(flow.lastSeen - flow.firstSeen >= 300 - 2 * tick - 1, 'the 300 ms between the packets');
  } finally {
    fm.close();
  }
});
