import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../shared/exec.js';
import { objectPath } from './paths.js';
import {
  FLOW_KEY_SIZE,
  FLOW_VALUE_SIZE,
  flowmonConfig,
  flowmonCounters,
  flowmonIface,
  linkemConfig,
  linkemCounters,
  QOS_BUCKET_SIZE,
  qosConfig,
  qosCounters,
  qosLpmKey,
  qosRule,
  qosRuleset,
} from './types.js';

/** Struct sizes as the compiler laid them out, read from the object's BTF. */
async function btfStructSizes(program: string): Promise<Map<string, number>> {
  const { stdout } = await run('bpftool', ['btf', 'dump', 'file', objectPath(program), 'format', 'raw']);
  const sizes = new Map<string, number>();
  for (const m of stdout.matchAll(/STRUCT '([a-z_0-9]+)' size=(\d+)/g)) sizes.set(m[1] ?? '', Number(m[2]));
  return sizes;
}

test('the TypeScript mirrors of bpf/types.h have the sizes the compiler gave the C structs', async () => {
  const sizes = await btfStructSizes('linkem');
  assert.equal(linkemConfig.size, sizes.get('linkem_config'));
  assert.equal(linkemCounters.size, sizes.get('linkem_counters'));
  const qos = await btfStructSizes('qos');
  assert.equal(qosConfig.size, qos.get('qos_config'));
  assert.equal(qosLpmKey.size, qos.get('qos_lpm_key'));
  assert.equal(qosRuleset.size, qos.get('qos_ruleset'));
  assert.equal(qosRule.size, qos.get('qos_rule'));
  assert.equal(QOS_BUCKET_SIZE, qos.get('qos_bucket'));
  assert.equal(qosCounters.size, qos.get('qos_counters'));
  const flowmon = await btfStructSizes('flowmon');
  assert.equal(FLOW_KEY_SIZE, flowmon.get('flow_key'));
  assert.equal(FLOW_VALUE_SIZE, flowmon.get('flow_value'));
  assert.equal(flowmonConfig.size, flowmon.get('flowmon_config'));
  assert.equal(flowmonIface.size, flowmon.get('flowmon_iface'));
  assert.equal(flowmonCounters.size, flowmon.get('flowmon_counters'));
});

test('codecs round-trip', () => {
  const buf = Buffer.alloc(linkemCounters.size);
  const value = {
    passedPackets: 1n,
    passedBytes: 2n ** 40n,
    droppedPackets: 3n,
    droppedBytes: 4n,
    bursts: 5n,
  };
  linkemCounters.encode(value, buf, 0);
  assert.deepEqual(linkemCounters.decode(buf, 0), value);
});
