import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiAlone } from '../../../test/support/tower-process.js';
import { QosService } from './service.js';

test('QoS API: viewers read, operators set; refusals name the problem; every change is in the audit log', async () => {
  const api = await apiAlone(
    [
      ['alice', 'operator'],
      ['bob', 'viewer'],
    ],
    async (store) => {
      const qos = new QosService(store);
      await qos.load();
      return { qos };
    },
  );
  const { app, store } = api;
  try {
    const [op = '', viewer = ''] = api.tokens;
    const call = (method: string, path: string, token: string, body?: unknown) =>
      app.request(`/api/v1/qos${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const policy = {
      classes: [{ name: 'c2', priority: 0, guaranteedBps: 2e6, dscp: 46 }],
      rules: [{ name: 'c2', class: 'c2', protocol: 17, dstPorts: [5000, 5000] }],
      links: [{ node: 'n1', iface: 'eth0', rateBps: 10e6 }],
    };
    assert.equal((await call('PUT', '', viewer, policy)).status, 403);
    const ok = await call('PUT', '', op, policy);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { version: number }).version, 1);
    const bad = await call('PUT', '', op, { ...policy, rules: [{ name: 'x', class: 'video' }] });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /rule "x": unknown class "video"/);
    const check = await call('POST', '/validate', viewer, {
      ...policy,
      links: [{ node: 'n1', iface: 'eth0', rateBps: 1e6 }],
    });
    assert.deepEqual(await check.json(), {
      ok: false,
      errors: ["link n1/eth0: the classes' guarantees add up to 2 Mbit/s, above the link's rate of 1 Mbit/s"],
    });
    const now = (await (await call('GET', '', viewer)).json()) as { version: number; policy: typeof policy };
    assert.equal(now.version, 1);
    assert.equal(now.policy.rules[0]?.name, 'c2');
    const audit = (await (await call('GET', '/audit', viewer)).json()) as { who: string; action: string }[];
    assert.deepEqual(
      audit.map((a) => `${a.who} ${a.action}`),
      ['alice refused', 'alice set'],
    );
    // a restarted tower keeps the policy and its version
    const again = new QosService(store);
    await again.load();
    assert.equal(again.policy.version, 1);
    assert.equal(again.policy.policy.classes[0]?.name, 'c2');
  } finally {
    api.close();
  }
});
