import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TracedPath } from '../tower/api/mesh-paths.js';
import { QosPolicySpec } from '../tower/qos/model.js';
import { validatePolicy } from '../tower/qos/validate.js';
import { checkWithServices, compileServices } from '../tower/services/compile.js';
import { ServiceRegistry } from '../tower/services/registry.js';
import { testbedConfigSchema } from './config.js';
import { meshIfname, planTestbed } from './plan.js';
import { C2_GUARANTEE_BPS, testbedQosPolicy, testbedServices } from './services.js';
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

test("C2 states an intent the tower compiles on the mesh's paths within the flash class; the other services say none", () => {
  const config = testbedConfigSchema.parse({});
  const plan = planTestbed(config);
  const services = new ServiceRegistry(testbedServices(plan, config)).services;
  assert.deepEqual(
    services.map((s) => [s.name, s.guaranteeBps ?? null]),
    [
      ['bulk', null],
      ['c2', C2_GUARANTEE_BPS],
      ['sensor', null],
      ['web', null],
    ],
  );
  // The paths babeld takes on the clean mesh: direct where a link is, else through the
  // lower-numbered common neighbour.
  const linked = (a: string, b: string) =>
    plan.links.some((l) => [l.a, l.b].sort().join() === [a, b].sort().join());
  const trace = (from: string, to: string): TracedPath => {
    const relay = linked(from, to)
      ? []
      : [plan.nodes.map((n) => n.name).find((n) => linked(from, n) && linked(n, to)) ?? ''];
    const hops = [from, ...relay, to];
    return {
      from,
      to,
      prefix: '',
      hops,
      status: 'ok',
      since: 0,
      egress: hops.slice(1).map((next) => meshIfname(next)),
    };
  };
  const policy = QosPolicySpec.parse(testbedQosPolicy(plan, config));
  const compiled = compileServices(services, policy, trace);
  assert.deepEqual(compiled.problems, []);
  assert.deepEqual(checkWithServices(policy, compiled), []);
  // Rules on every radio link end (each carries C2 one way or the other), each node's C2
  // traffic only: none for the other services, whose rules are the policy's by port.
  assert.deepEqual(new Set(compiled.rules.map((r) => r.class)), new Set(['flash']));
  assert.equal(
    new Set(compiled.rules.map((r) => `${r.scope?.node}/${r.scope?.iface}`)).size,
    plan.links.length * 2,
  );
  // The guarantees crossing one link fit the flash class as declared: the tower need not raise it.
  const flash = policy.classes.find((c) => c.name === 'flash')?.guaranteedBps ?? 0;
  assert.ok(
    (compiled.guarantees.flash ?? 0) <= flash,
    `C2's guarantees cross one link with ${compiled.guarantees.flash} bit/s, above flash's ${flash}`,
  );
});

test("every service of the testbed has traffic, and turning one off leaves the others; bulk 'off' is declared, its traffic idle until a scenario starts it", () => {
  const config = testbedConfigSchema.parse({ traffic: { bulk: false } });
  const plan = planTestbed(config);
  const procs = trafficPlan(plan, config);
  assert.deepEqual([...new Set(procs.map((p) => p.service))].sort(), ['c2', 'sensor', 'web']);
  assert.equal(new Set(procs.map((p) => p.name)).size, procs.length, 'each process its own name');
  assert.ok(
    !testbedServices(plan, config).some((s) => s.name === 'bulk'),
    'no bulk service without bulk traffic',
  );
  const off = testbedConfigSchema.parse({ traffic: { bulk: 'off' } });
  const idle = trafficPlan(plan, off).filter((p) => p.idle);
  assert.deepEqual(
    idle.map((p) => p.service),
    ['bulk', 'bulk'],
    'its sink and sender, not started by up',
  );
  assert.ok(testbedServices(plan, off).some((s) => s.name === 'bulk'));
});
