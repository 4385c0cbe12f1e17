/**
 * The node process hardened: `tacmesh node apply --watch` keeps only CAP_NET_ADMIN,
 * CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE in every thread (and no_new_privs), and still does its whole job with them:
 * loads the verified flowmon, attaches it, repairs drift; `node remove` stops it and cleans up.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeTestNode } from '../../../test/support/agent-node.js';
import { Tool } from '../../../test/support/tools/index.js';
import { cleanLeftovers, Lab, stopChild } from '../../netlab/lab.js';
import { run } from '../../shared/exec.js';
import { bridgeName } from './desired.js';
import { capabilityMask, capabilityNames, NODE_CAPABILITIES, processCapabilities } from './hardening.js';
import { isAlive } from './state.js';

const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [...process.execArgv, main, 'node', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });

test('the hardened node process keeps only CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE, and still does its job', async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-hardening-'));
  const node = await makeTestNode(lab, { dir });
  const file = join(dir, 'node.yaml');
  writeFileSync(file, node.yaml);
  const state = join(dir, 'state');
  const agent = new Tool(
    spawn(
      process.execPath,
      [...process.execArgv, main, 'node', 'apply', '-f', file, '--watch', '--state-dir', state],
      { stdio: 'pipe' },
    ),
  );
  try {
    let stderr = '';
    agent.child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await agent
      .line(`watching node n1 (pid ${agent.child.pid}); Ctrl-C stops`, 30_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\nstdout: ${agent.stdout}\nstderr: ${stderr}`);
      });
    const want = capabilityMask(NODE_CAPABILITIES);
    const tasks = processCapabilities(agent.child.pid!);
    assert.ok(tasks.length > 1, 'Node.js has several threads');
    for (const t of tasks) {
      assert.equal(
        capabilityNames(t.effective).join(),
        capabilityNames(want).join(),
        `thread ${t.tid} effective`,
      );
      assert.equal(t.permitted, want, `thread ${t.tid} permitted`);
      assert.equal(t.bounding, want, `thread ${t.tid} bounding`);
      assert.equal(t.inheritable | t.ambient, 0n, `thread ${t.tid} inheritable/ambient`);
      assert.ok(t.noNewPrivs, `thread ${t.tid} no_new_privs`);
    }
    // With those two it loaded and attached flowmon and keeps the node: all healthy...
    const healthy = async () => {
      const r = cli('status', '--state-dir', state, '--json');
      return r.status === 0 && (JSON.parse(r.stdout) as { ok: boolean }[]).every((s) => s.ok);
    };
    const deadline = Date.now() + 30_000; // liveness bound
    while (!(await healthy())) {
      assert.ok(Date.now() < deadline, `status: ${cli('status', '--state-dir', state).stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // ...and repairs drift.
    const bridge = bridgeName(lab.prefix, 'a');
    const t0 = Date.now();
    await lab.ip(node.netns, 'link', 'del', bridge);
    for (;;) {
      const { stdout } = await lab.ip(node.netns, '-j', 'link', 'show');
      if (stdout.includes(`"ifname":"${bridge}"`)) break;
      assert.ok(Date.now() - t0 < 30_000, 'the hardened agent made the bridge again (liveness bound)');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(
      agent.stdout,
      new RegExp(`ok {3}slice a switch ${bridge}: missing -> create bridge ${bridge}`),
    );
    // `remove` stops the watching process first, then leaves nothing.
    const r = cli('remove', '--state-dir', state);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await agent.exited, 0);
    assert.ok(!isAlive(agent.child.pid!));
    const { stdout: namespaces } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(namespaces, new RegExp(`${lab.prefix}-n1-`));
  } finally {
    await stopChild(agent.child);
    cli('remove', '--state-dir', state);
    await lab.cleanup();
    await cleanLeftovers(new RegExp(`^${lab.prefix}`));
    rmSync(dir, { recursive: true, force: true });
  }
});
