import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { progExists, waitProgGone } from '../../test/support/kernel.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';
import { Lab } from '../netlab/lab.js';
import { run } from '../shared/exec.js';
import { attach, BpfObject, ifindexOf, objectPath } from './index.js';
import { linkemCounters, u32Key } from './types.js';

const DATAGRAMS = 500;
const PAYLOAD = 100;
// What tc ingress sees of one datagram: Ethernet 14 + IPv4 20 + UDP 8 + payload.
const WIRE_BYTES = 14 + 20 + 8 + PAYLOAD;

describe('libbpf binding on a veth in a namespace (real kernel)', () => {
  let lab: Lab;
  let a: string;
  let b: string;
  let ifB: string;

  before(async () => {
    lab = new Lab();
    a = await lab.netns('a', { ipv6: false });
    b = await lab.netns('b', { ipv6: false });
    const veth = await lab.veth({ netns: a, addr: '10.77.10.1/24' }, { netns: b, addr: '10.77.10.2/24' });
    ifB = veth.b;
    await lab.staticNeighbours(
      { netns: a, iface: veth.a, ip: '10.77.10.1' },
      { netns: b, iface: veth.b, ip: '10.77.10.2' },
    );
  });
  after(() => lab.cleanup());

  async function sendDatagrams(): Promise<{ received: number; bytes: number }> {
    const sink = new Tool(lab.spawnNode(b, toolPath('udp'), ['recv', '7000', '500']));
    await sink.line('ready');
    const source = new Tool(
      lab.spawnNode(a, toolPath('udp'), ['send', '10.77.10.2', '7000', `${DATAGRAMS}`, `${PAYLOAD}`]),
    );
    await source.result();
    return sink.result();
  }

  for (const mode of ['tcx', 'tc'] as const) {
    test(`${mode}: counts every packet of real traffic, and detach leaves nothing`, async () => {
      const obj = BpfObject.load(objectPath('linkem'));
      const prog = obj.program('linkem');
      const progId = prog.id;
      const counters = obj.map('linkem_counters').typed(u32Key, linkemCounters);
      const attachment = attach(prog, ifB, 'ingress', { netns: b, mode });
      try {
        assert.equal(attachment.mode, mode);
        if (mode === 'tc') {
          const { stdout } = await lab.tc(b, 'filter', 'show', 'dev', ifB, 'ingress');
          assert.match(stdout, /linkem/, 'tc lists the filter');
          assert.match(stdout, /direct-action/);
          // REPLACE: attaching again swaps our filter instead of stacking a second one.
          const again = attach(prog, ifB, 'ingress', { netns: b, mode });
          const { stdout: twice } = await lab.tc(b, 'filter', 'show', 'dev', ifB, 'ingress');
          assert.equal(twice.match(/handle 0x7a6d/g)?.length, 1, 'still exactly one filter');
          assert.equal(again.mode, 'tc');
        }
        const got = await sendDatagrams();
        assert.equal(got.received, DATAGRAMS, 'the receiver got every datagram');
        const perCpu = counters.lookupAll(0) ?? [];
        const passed = perCpu.reduce((s, c) => s + c.passedPackets, 0n);
        const bytes = perCpu.reduce((s, c) => s + c.passedBytes, 0n);
        assert.equal(passed, BigInt(DATAGRAMS), 'the program counted every packet');
        assert.equal(bytes, BigInt(DATAGRAMS * WIRE_BYTES), 'and every byte, L2 header included');
      } finally {
        attachment.detach();
      }
      const { stdout } = await lab.tc(b, 'filter', 'show', 'dev', ifB, 'ingress');
      assert.equal(stdout.trim(), '', 'no tc filter is left');
      assert.ok(await progExists(progId), 'the object still holds the program');
      obj.close();
      assert.ok(await waitProgGone(progId), `program ${progId} is gone from the kernel (bpftool prog show)`);
      // Traffic still flows after detach.
      assert.equal((await sendDatagrams()).received, DATAGRAMS);
    });
  }

  test('a loader killed with SIGKILL leaves no program attached', async () => {
    const loader = new Tool(
      lab.spawnNode(b, new URL('../../test/fixtures/attach-and-wait.ts', import.meta.url).pathname, [ifB]),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (loader.stdout.includes('progId')) {
          clearInterval(timer);
          resolve();
        } else if (loader.child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error('loader exited early'));
        }
      }, 20);
    });
    const { progId } = JSON.parse(loader.stdout.trim()) as { progId: number };
    assert.ok(await progExists(progId), 'attached while the loader lives');
    loader.child.kill('SIGKILL');
    await loader.exited;
    assert.ok(await waitProgGone(progId), `program ${progId} gone after SIGKILL`);
    const { stdout } = await lab.tc(b, 'filter', 'show', 'dev', ifB, 'ingress');
    assert.equal(stdout.trim(), '');
  });

  test('errors name the problem: missing interface, missing object, missing map', () => {
    assert.throws(() => ifindexOf('nosuchif0', b), /no interface named nosuchif0 in network namespace/);
    assert.throws(() => BpfObject.load('/nonexistent/x.bpf.o'), /not found/);
    const obj = BpfObject.load(objectPath('linkem'));
    try {
      assert.throws(() => obj.map('nope'), /no map named nope \(has: .*linkem_config/);
    } finally {
      obj.close();
    }
  });

  test('a program the verifier rejects fails with the errno name and the verifier log', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/tacmesh-bad-');
    const src = `${dir}/bad.bpf.c`;
    // Reads a packet byte without a bounds check: the verifier must refuse it.
    writeFileSync(
      src,
      '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("tc") int bad(struct __sk_buff *skb) { return *(unsigned char *)(long)skb->data; }\nchar LICENSE[] SEC("license") = "GPL";\n',
    );
    await run('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      '-I/usr/include/x86_64-linux-gnu',
      '-c',
      src,
      '-o',
      `${dir}/bad.bpf.o`,
    ]);
    assert.throws(
      () => BpfObject.load(`${dir}/bad.bpf.o`),
      (err: Error & { code?: string; detail?: string }) =>
        err.code === 'EACCES' && /invalid access to packet/.test(err.detail ?? ''),
    );
  });
});
