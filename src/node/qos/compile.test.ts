import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policy } from '../../../test/support/qos-link.js';
import { QOS_ANY_DSCP } from '../../bpf/types.js';
import { compilePolicy, covers, parsePrefix } from './compile.js';

const classes = [
  { name: 'c2', priority: 0, guaranteedBps: 2e6, ceilingBps: 5e6, dscp: 46 },
  { name: 'bulk', priority: 7, guaranteedBps: 1e6, dscp: 8 },
];
const ifindex = () => 7;

test('each LPM entry holds every rule whose prefix covers it, and the rules without one', () => {
  const c = compilePolicy(
    policy(1, 'eth0', classes, [
      { name: 'wide', class: 'bulk', dstPrefixes: ['10.77.0.0/16'] },
      { name: 'narrow', class: 'c2', dstPrefixes: ['10.77.181.0/24', '2001:db8::/32'] },
      { name: 'any', class: 'bulk' },
    ]),
    ifindex,
  );
  const bitsOf = (text: string) => {
    const p = parsePrefix(text);
    return c.dst.find((e) => e.prefix.len === p.len && covers(e.prefix, p))?.bits[0];
  };
  assert.equal(bitsOf('10.77.0.0/16'), 0b101n);
  assert.equal(bitsOf('10.77.181.0/24'), 0b111n);
  assert.equal(bitsOf('2001:db8::/32'), 0b110n);
  assert.equal(bitsOf('::/0'), 0b100n);
  // no source prefixes anywhere: the root holds every rule
  assert.deepEqual(
    c.src.map((e) => [e.prefix.len, e.bits[0]]),
    [[0, 0b111n]],
  );
});

test('rules become entries: ports, class priority and DSCP, policer, any-DSCP', () => {
  const c = compilePolicy(
    policy(1, 'eth0', classes, [
      {
        name: 'a',
        class: 'c2',
        protocol: 17,
        dstPortMin: 5000,
        policeBps: 8e6,
        policeRemark: true,
        policeDscp: 10,
      },
      { name: 'b', class: 'bulk', srcPortMin: 1000, srcPortMax: 2000, matchDscp: 8, iface: 'eth0' },
    ]),
    ifindex,
  );
  const [a, b] = c.rules;
  assert.deepEqual([a?.dstPortMin, a?.dstPortMax, a?.srcPortMin, a?.srcPortMax], [5000, 5000, 0, 65535]);
  assert.equal(a?.priority, 0x1fff0);
  assert.equal(a?.setDscp, 46);
  assert.equal(a?.policeRate, 1_000_000n);
  assert.equal(a?.matchDscp, QOS_ANY_DSCP);
  assert.equal(a?.ifindex, 0);
  assert.deepEqual(
    [b?.srcPortMin, b?.srcPortMax, b?.matchDscp, b?.ifindex, b?.priority],
    [1000, 2000, 8, 7, 0x1fff1],
  );
  assert.deepEqual(
    c.classes.map((x) => x.classid),
    ['1:fff0', '1:fff1'],
  );
});

test('what the kernel tables cannot hold is refused with the reason', () => {
  assert.throws(
    () => compilePolicy(policy(1, 'eth0', classes, [{ name: 'x', class: 'voice' }]), ifindex),
    /rule "x": unknown class "voice"/,
  );
  assert.throws(
    () =>
      compilePolicy(
        policy(1, 'eth0', classes, [{ name: 'x', class: 'c2', srcPrefixes: ['10.77.999.0/24'] }]),
        ifindex,
      ),
    /rule "x": "10.77.999.0\/24" is not an address or prefix/,
  );
  const many = Array.from({ length: 16 }, (_, i) => ({ name: `k${i}` }));
  assert.throws(() => compilePolicy(policy(1, 'eth0', many, []), ifindex), /16 classes: at most 15/);
});
