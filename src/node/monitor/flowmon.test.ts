/**
 * Flowmon's run-time steering in global data: the programs look an interface up in
 * flowmon_ifaces only while some interface is disabled, so the disabled count user space
 * keeps in the config must follow every enable/disable. Driven by BPF_PROG_TEST_RUN, whose
 * packets come from loopback (ifindex 1): the watched interface is the loopback of a
 * namespace this test creates, which has ifindex 1 as well.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tcpFrame } from '../../../bench/monitor/packets.js';
import { Lab } from '../../netlab/lab.js';
import { Flowmon, flowmonConfigMap } from './flowmon.js';

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
