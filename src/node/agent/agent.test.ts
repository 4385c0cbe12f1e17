/**
 * The agent on a real node namespace: apply, connectivity and isolation, re-apply, a bad
 * config, the management path, drift repair timed, a tampered object, remove.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  makeTestNode,
  pings,
  signObjects,
  type TestNode,
  tcxLinkIds,
} from '../../../test/support/agent-node.js';
import { cleanLeftovers, Lab } from '../../netlab/lab.js';
import { run } from '../../shared/exec.js';
import type { FlowRecord } from '../monitor/records.js';
import { Agent, ApplyRefused, removeNode } from './agent.js';
import { ConfigError, parseNodeConfig } from './config.js';
import { MEMBER_IFACE } from './desired.js';
import type { AgentEvent } from './events.js';
import { StateStore } from './state.js';

const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [...process.execArgv, main, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('node agent on a two-slice node', () => {
  let lab: Lab;
  let node: TestNode;
  let dir: string;
  let agent: Agent | undefined;
  const events: AgentEvent[] = [];
  const flows: FlowRecord[] = [];
  const member = (slice: string, name: string) => `${lab.prefix}-n1-${slice}-${name}`;

  before(async () => {
    lab = new Lab();
    dir = mkdtempSync(join(tmpdir(), 'tacmesh-agent-test-'));
    node = await makeTestNode(lab, { dir });
  });

  after(async () => {
    try {
      await agent?.stop();
      await removeNode(node.config, new StateStore(join(dir, 'state'))).catch(() => undefined);
    } finally {
      await lab.cleanup();
      await cleanLeftovers(new RegExp(`^${lab.prefix}`));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('apply: every slice reaches its own members and the uplink, not the other slice nor the control plane', async () => {
    agent = new Agent(node.config, {
      stateDir: join(dir, 'state'),
      onEvent: (e) => events.push(e),
      sink: { flows: (r) => flows.push(...r), http: () => undefined, stats: () => undefined },
    });
    const applied = await agent.apply();
    assert.ok(applied.length > 10, `apply made the node (${applied.length} actions)`);
    assert.deepEqual(
      applied.filter((e) => !e.ok),
      [],
    );
    const a1 = member('a', 'a1');
    const b1 = member('b', 'b1');
    assert.ok(await pings(a1, '10.77.101.11'), 'a1 reaches a2 over switch a');
    assert.ok(await pings(b1, '10.77.102.11'), 'b1 reaches b2 over switch b');
    assert.ok(await pings(a1, '10.77.110.2'), 'a1 reaches the wan through the uplink');
    assert.ok(await pings(b1, '10.77.110.2'), 'b1 reaches the wan through the uplink');
    assert.equal(await pings(a1, '10.77.102.10'), false, 'a1 does not reach slice b');
    assert.equal(await pings(b1, '10.77.101.11'), false, 'b1 does not reach slice a');
    assert.equal(await pings(a1, '10.77.120.2'), false, 'a slice does not reach the tower');
    const status = await agent.status();
    const bad = status.filter((s) => !s.ok && !s.entity.endsWith('monitor'));
    assert.deepEqual(bad, [], 'every entity but the monitors (not started) is healthy');
  });

  test('re-apply of the unchanged config does nothing', async () => {
    assert.deepEqual(await agent!.apply(), []);
    const r = cli(
      'node',
      'apply',
      '-f',
      writeConfig('same.yaml', node.yaml),
      '--state-dir',
      join(dir, 'state'),
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '', 'no action from the command line either');
  });

  test('a bad config is refused naming the field, and the running node is untouched', async () => {
    const bad = node.yaml.replace('10.77.102.11/24', '10.77.103.11/24').replace('share: 50', 'share: 70');
    assert.throws(
      () => parseNodeConfig(bad, 'bad.yaml'),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /bad\.yaml: slices\.1\.members\.1\.address: 10\.77\.103\.11\/24 is outside/,
        );
        assert.match(err.message, /shares of uplink .* add up to 120 %/);
        return true;
      },
    );
    const r = cli('node', 'apply', '-f', writeConfig('bad.yaml', bad), '--state-dir', join(dir, 'state'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /slices\.1\.members\.1\.address/);
    // A config naming an interface the node lacks is refused before any change.
    const missing = parseNodeConfig(node.yaml.replaceAll(node.uplink, 'nosuch0'));
    await assert.rejects(agent!.apply(missing), (err: Error) => {
      assert.ok(err instanceof ApplyRefused);
      assert.match(err.message, /uplink nosuch0: interface nosuch0 does not exist/);
      return true;
    });
    assert.deepEqual(await agent!.apply(), [], 'nothing changed');
  });

  test('control traffic to the tower leaves by the management interface only', async () => {
    const route = async () => (await lab.ip(node.netns, 'route', 'get', '10.77.120.2')).stdout;
    // Even with a default route out of the uplink, the tower is reached by the management link.
    await lab.ip(node.netns, 'route', 'add', 'default', 'via', '10.77.110.2');
    assert.match(await route(), new RegExp(`dev ${node.mgmt}`));
    assert.ok(await pings(node.netns, '10.77.120.2'));
    await lab.ip(node.netns, 'link', 'set', node.mgmt, 'down');
    await assert.rejects(route(), /No route to host/, 'management down: refused, not sent out of the uplink');
    assert.equal(await pings(node.netns, '10.77.120.2'), false);
    const events = await agent!.apply();
    assert.ok(events.some((e) => e.entity === `management ${node.mgmt}` && e.problem === 'down' && e.ok));
    assert.ok(await pings(node.netns, '10.77.120.2'), 'the management path is back');
    await lab.ip(node.netns, 'route', 'del', 'default');
  });

  test('drift is repaired and reported: bridge deleted, veth down, namespace gone, program detached', async () => {
    await agent!.start();
    const portA1 = agent!.desired.slices[0]!.members[0]!.port;
    await waitFor(
      () => flowsOn(portA1) || undefined,
      5000,
      () => pings(member('a', 'a1'), '10.77.101.11'),
    );
    const times: Record<string, number> = {};
    const breakAndWait = async (
      name: string,
      breakIt: () => Promise<unknown>,
      match: (e: AgentEvent) => boolean,
    ) => {
      const from = events.length;
      const t0 = Date.now();
      await breakIt();
      // A liveness bound, not a target: the repair time is printed (the check runs every 500 ms).
      const e = await waitFor(() => events.slice(from).find((x) => match(x) && x.ok), 20_000).catch((err) => {
        throw new Error(`${name}: ${err.message}; events: ${JSON.stringify(events.slice(from), null, 1)}`);
      });
      times[name] = e.time - t0;
      assert.equal(e.cause, 'drift');
    };
    const bridgeA = agent!.desired.slices[0]!.bridge;
    await breakAndWait(
      'bridge deleted',
      () => lab.ip(node.netns, 'link', 'del', bridgeA),
      (e) => e.action === `create bridge ${bridgeA}`,
    );
    await waitFor(() => pings(member('a', 'a1'), '10.77.101.11').then((ok) => ok || undefined), 3000);
    await breakAndWait(
      'veth down (member side)',
      () => lab.ip(member('a', 'a2'), 'link', 'set', MEMBER_IFACE, 'down'),
      (e) => e.entity === 'slice a member a2' && e.action.includes(`${MEMBER_IFACE} up`),
    );
    await breakAndWait(
      'veth down (switch side)',
      () => lab.ip(node.netns, 'link', 'set', portA1, 'down'),
      (e) => e.entity === 'slice a member a1' && e.action === `bring ${portA1} up`,
    );
    await waitFor(() => pings(member('a', 'a1'), '10.77.110.2').then((ok) => ok || undefined), 3000);
    await breakAndWait(
      'namespace gone',
      () => run('ip', ['netns', 'del', member('b', 'b2')]),
      (e) => e.entity === 'slice b member b2' && e.action.startsWith('create namespace'),
    );
    await waitFor(() => pings(member('b', 'b1'), '10.77.102.11').then((ok) => ok || undefined), 3000);
    await breakAndWait(
      'program detached',
      () => detachFlowmon(node.netns, portA1, programIds(agent!)),
      (e) => e.entity === 'slice a member a1 monitor' && e.problem === 'flowmon detached',
    );
    console.log(`repair times (ms): ${JSON.stringify(times)}`);
    // After all that, every entity is healthy, the monitors included, and flows are counted again.
    const bad = (await agent!.status()).filter((s) => !s.ok);
    assert.deepEqual(bad, []);
    const before = flows.length;
    await waitFor(
      () => flowsOn(portA1, before) || undefined,
      4000,
      () => pings(member('a', 'a1'), '10.77.101.11'),
    );
  });

  test('a problem the agent cannot fix is reported once, not every round', async () => {
    const from = events.length;
    await lab.ip(node.netns, 'link', 'set', node.mgmt, 'down');
    await lab.ip(node.netns, 'link', 'set', node.mgmt, 'name', 'tmpmgmt0');
    await new Promise((r) => setTimeout(r, 2000)); // four rounds
    const missing = events
      .slice(from)
      .filter((e) => e.problem === `interface ${node.mgmt} does not exist (the agent does not create it)`);
    assert.equal(missing.length, 1, JSON.stringify(events.slice(from)));
    assert.equal(missing[0]!.ok, false);
    await lab.ip(node.netns, 'link', 'set', 'tmpmgmt0', 'name', node.mgmt);
    await waitFor(
      () =>
        events
          .slice(from)
          .find((e) => e.entity === `management ${node.mgmt}` && e.problem === 'down' && e.ok),
      2000,
    );
  });

  test('a tampered eBPF object is refused with an error naming the file', async () => {
    const objects = join(dir, 'objects');
    mkdirSync(objects, { recursive: true });
    const copy = join(objects, 'flowmon.bpf.o');
    copyFileSync(fileURLToPath(new URL('../../../bpf/.output/flowmon.bpf.o', import.meta.url)), copy);
    const signed = signObjects(objects, [copy]);
    const bytes = readFileSync(copy);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    writeFileSync(copy, bytes);
    const config = {
      ...node.config,
      bpf: { manifest: signed.manifest, trustedKeys: [signed.publicKey], objectDir: objects },
    };
    const other = new Agent(config, {
      stateDir: join(dir, 'other'),
      sink: { flows: () => undefined, http: () => undefined, stats: () => undefined },
    });
    await assert.rejects(other.start(), new RegExp(`refusing eBPF object ${copy}: SHA-256`));
    await other.stop();
  });

  test('remove leaves no namespace, link, qdisc, rule, route or program', async () => {
    const ids = programIds(agent!);
    await agent!.remove();
    agent = undefined;
    const { stdout: namespaces } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(namespaces, new RegExp(`${lab.prefix}-n1-`));
    const { stdout: links } = await lab.ip(node.netns, '-j', 'link', 'show');
    assert.deepEqual(
      (JSON.parse(links) as { ifname: string }[]).map((l) => l.ifname).sort(),
      ['lo', node.mgmt, node.uplink].sort(),
    );
    const { stdout: qdisc } = await lab.tc(node.netns, 'qdisc', 'show', 'dev', node.uplink);
    assert.doesNotMatch(qdisc, /htb/);
    const { stdout: rules } = await lab.ip(node.netns, 'rule', 'show');
    assert.doesNotMatch(rules, /^7[67]00:/m);
    const { stdout: table } = await lab
      .ip(node.netns, 'route', 'show', 'table', '7700')
      .catch(() => ({ stdout: '' }));
    assert.equal(table.trim(), '');
    const { stdout: addrs } = await lab.ip(node.netns, '-4', 'addr', 'show');
    assert.doesNotMatch(addrs, /10\.77\.1[12]0\.1\//, 'the addresses the config set are gone');
    for (const id of ids)
      await assert.rejects(run('bpftool', ['prog', 'show', 'id', String(id)]), `program ${id} is unloaded`);
    assert.deepEqual(new StateStore(join(dir, 'state')).nodes(), []);
  });

  function writeConfig(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  function flowsOn(port: string, from = 0): boolean {
    return flows.slice(from).some((f) => f.iface === port);
  }
});

function programIds(agent: Agent): number[] {
  const obj = agent.monitorStage!.flowmon.obj;
  return ['flowmon_ingress', 'flowmon_egress'].map((p) => obj.program(p).id);
}

/** Polls `probe` until it gives a value, doing `nudge` in between; fails after `timeoutMs`. */
async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  nudge?: () => Promise<unknown>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    if (nudge) await nudge();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Detaches the agent's flowmon tcx links from a port as an intruder would: `bpftool link detach`. */
async function detachFlowmon(netns: string, port: string, progIds: number[]): Promise<void> {
  const { stdout: idx } = await run('ip', ['-n', netns, '-j', 'link', 'show', 'dev', port]);
  const ifindex = (JSON.parse(idx) as { ifindex: number }[])[0]!.ifindex;
  const mine = await tcxLinkIds(ifindex, progIds);
  assert.equal(mine.length, 2, `flowmon's two links on ${port} (ifindex ${ifindex})`);
  for (const id of mine) await run('bpftool', ['link', 'detach', 'id', String(id)]);
}
