import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePolicy } from '../tower/qos/validate.js';
import { ServiceRegistry } from '../tower/services/registry.js';
import { testbedConfigSchema } from './config.js';
import { planTestbed } from './plan.js';
import { testbedQosPolicy, testbedServices } from './services.js';
import { trafficPlan } from './traffic.js';

test('the default testbed declares four services the tower takes, and a policy it takes', () => {
  const config = testbedConfigSchema.parse({});
  const plan = planTestbed(config);
  const registry = new ServiceRegistry(testbedServices(plan, config));
  assert.deepEqual(registry.services.map((s) => [s.name, s.precedence, s.qosClass]).sort(), [
    ['bulk', 'routine', 'routine'],
    ['c2', 'flash', 'flash'],
    ['sensor', 'immediate', 'immediate'],
    ['web', 'routine', 'routine'],
  ]);
  const v = validatePolicy(testbedQosPolicy(plan, config));
  assert.ok(v.ok, v.ok ? '' : v.errors.join('; '));
  assert.equal(v.policy.links.length, plan.links.length * 2, 'every radio link end');
  assert.ok(v.policy.links.every((l) => l.rateBps === 'auto'));
  assert.equal(v.policy.auto.enabled, true);
  // The guarantees fit a radio that falls to 4 Mbit/s (the story's degraded link).
  assert.ok(v.policy.classes.reduce((s, c) => s + c.guaranteedBps, 0) <= 4_000_000);
});

test('every service of the testbed has traffic, and turning one off leaves the others', () => {
  const config = testbedConfigSchema.parse({ traffic: { bulk: false } });
  const plan = planTestbed(config);
  const procs = trafficPlan(plan, config);
  assert.deepEqual([...new Set(procs.map((p) => p.service))].sort(), ['c2', 'sensor', 'web']);
  assert.equal(new Set(procs.map((p) => p.name)).size, procs.length, 'each process its own name');
  assert.ok(
    !testbedServices(plan, config).some((s) => s.name === 'bulk'),
    'no bulk service without bulk traffic',
  );
});
