/**
 * Golden signals against the load generator's own tally: a node watching the veth between
 * a client namespace and its HTTP server, a real tower, a service declared at the tower.
 * The server answers each request after a fixed delay with a status the generator draws at
 * random (the tower is not told the mix).
 *
 * Tolerances: counts of 4xx and 5xx exactly equal (every request is seen at this rate); p95
 * inside [delay, client's p95] widened by the histogram's bucket (×/÷ 2^¼) and the 1 ms
 * resolution of record times — the node sees a request after the client sent it and the
 * response before the client has it, so the server's time can only lie in that range.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { BIN, NodeTowerLab, waitFor } from '../../../test/support/node-tower.js';
import { Tool, toolPath } from '../../../test/support/tools/index.js';
import type { ServiceGraph, ServiceRow, ServiceSeries } from '../api/services-types.js';

const DELAY_MS = 40;
const COUNT = 120;
const BUCKET = 2 ** (1 / 4);

describe('services: golden signals from a real node and tower', () => {
  const rig = new NodeTowerLab(91, 92);
  const client = '10.77.92.1';

  before(async () => {
    await rig.start({
      services: [
        {
          name: 'c2',
          precedence: 'flash',
          instances: [{ node: 'node1', address: rig.server, port: 80, protocol: 'http' }],
          objective: { targetP95Ms: 20, errorBudgetPct: 1 },
        },
        {
          name: 'console',
          precedence: 'routine',
          instances: [{ node: 'node1', address: client, port: 0, protocol: 'http' }],
        },
      ],
    });
    rig.startNode();
    await waitFor('node1 connected', async () => {
      const { body } = await rig.api('nodes');
      return JSON.parse(body).find((n: { name: string; connected: boolean }) => n.connected);
    });
  });
  after(() => rig.stop());

  test('error rate and p95 of a hidden status mix and a fixed delay match the generator', async (t) => {
    const gen = new Tool(
      rig.lab.spawnNode(rig.cl, toolPath('http'), [
        'sample',
        `http://${rig.server}`,
        String(COUNT),
        '30',
        String(DELAY_MS),
        '200',
        '200',
        '200',
        '404',
        '503',
      ]),
    );
    const truth = await gen.result<{
      sent: number;
      statuses: Record<string, number>;
      latenciesMs: number[];
    }>();
    const of = (cls: number) =>
      Object.entries(truth.statuses).reduce(
        (n, [code, k]) => n + (Math.floor(Number(code) / 100) === cls ? k : 0),
        0,
      );
    const sorted = [...truth.latenciesMs].sort((a, b) => a - b);
    const genP95 = sorted[Math.ceil(0.95 * sorted.length) - 1] as number;

    const c2 = await waitFor(
      'the tower to count every request',
      async () => {
        const rows = JSON.parse((await rig.api('services?last=5m')).body) as ServiceRow[];
        const row = rows.find((r) => r.name === 'c2');
        return row && row.requests >= COUNT ? row : undefined;
      },
      40_000,
    );
    assert.equal(c2.requests, truth.sent);
    assert.equal(c2.errors4xx, of(4), '4xx as the generator counted them');
    assert.equal(c2.errors5xx, of(5), '5xx as the generator counted them');
    assert.ok(
      Math.abs(c2.errorPct - (100 * (of(4) + of(5))) / truth.sent) < 0.01,
      `error % ${c2.errorPct} vs the generator's`,
    );
    const p95 = c2.p95Ms as number;
    t.diagnostic(
      `generator: ${truth.sent} sent, ${JSON.stringify(truth.statuses)}, p95 ${genP95.toFixed(1)} ms; tower: ${c2.errors4xx} 4xx, ${c2.errors5xx} 5xx, p50/p95/p99 ${c2.p50Ms}/${c2.p95Ms}/${c2.p99Ms} ms`,
    );
    assert.ok(
      p95 >= DELAY_MS / BUCKET - 1 && p95 <= genP95 * BUCKET + 1,
      `p95 ${p95} ms within [${DELAY_MS}, ${genP95.toFixed(1)}] ms (the delay and the client's p95) ± a bucket`,
    );
    assert.equal(c2.precedence, 'flash');
    assert.equal(c2.qosClass, 'flash');
    assert.equal(c2.health, 'failing', 'a third of the answers are errors: at or above 10 %');
    assert.ok(c2.bps > 0, 'bytes/s from the flows');

    const graph = JSON.parse((await rig.api('services/graph?last=5m')).body) as ServiceGraph;
    assert.deepEqual(
      graph.edges.map((e) => [e.from, e.to, e.requests]),
      [['console', 'c2', truth.sent]],
    );
    assert.deepEqual(graph.nodes.map((n) => n.id).sort(), ['c2', 'console']);

    const series = JSON.parse((await rig.api('services/c2/series?last=5m&step=10s')).body) as ServiceSeries;
    assert.equal(series.points.reduce((n, p) => n + p.rps * 10, 0).toFixed(0), String(truth.sent));
    assert.ok(series.breaches.length > 0, 'p95 above the 20 ms target is listed as a breach');
    assert.match(series.breaches[0]?.what ?? '', /p95 .* > 20 ms/);
  });

  test('a declaration that contradicts the registry is refused with the reason', async () => {
    const clash = await rig.api('services', {
      method: 'PUT',
      body: JSON.stringify([
        { name: 'c2', instances: [{ node: 'node1', address: rig.server, port: 80 }] },
        { name: 'radio-chat', instances: [{ node: 'node1', address: rig.server, port: 80 }] },
      ]),
    });
    assert.equal(clash.status, 409);
    assert.match(
      JSON.parse(clash.body).error,
      /10\.77\.92\.254:80\/http is already an instance of service "c2"/,
    );
    const bad = await rig.api('services', {
      method: 'PUT',
      body: JSON.stringify([{ name: 'x', precedence: 'urgent' }]),
    });
    assert.equal(bad.status, 409);
    assert.match(JSON.parse(bad.body).error, /0\.precedence/);
    const rows = JSON.parse((await rig.api('services')).body) as ServiceRow[];
    assert.deepEqual(
      rows.map((r) => r.name),
      ['c2', 'console'],
      'the registry is unchanged',
    );
  });

  test('tacmesh services apply: the tower refuses a contradicting file, naming it, and takes a good one', async () => {
    // Not spawnSync: the tower answering it runs in this process.
    const tacmesh = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            BIN,
            'services',
            ...args,
            '--api',
            `https://127.0.0.1:${rig.tower?.api.port}`,
            '--ca',
            `${rig.dir}/pki/ca.crt`,
          ],
          { encoding: 'utf8', env: { ...process.env, TACMESH_TOKEN: rig.token }, timeout: 20_000 },
          (err, stdout, stderr) => resolve({ status: err ? (err.code as number) : 0, stdout, stderr }),
        );
      });
    const file = `${rig.dir}/services.yaml`;
    const c2 = `  - { name: c2, precedence: flash, instances: [{ node: node1, address: ${rig.server}, port: 80 }] }\n`;
    writeFileSync(
      file,
      `services:\n${c2}  - { name: chat, instances: [{ node: node1, address: ${rig.server}, port: 80 }] }\n`,
    );
    const refused = await tacmesh('apply', '-f', file);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`${file}: services: .*is already an instance of service "c2"`));
    writeFileSync(
      file,
      `services:\n${c2}  - { name: chat, precedence: immediate, instances: [{ node: node1, address: ${rig.server}, port: 5222, protocol: tcp }] }\n`,
    );
    const applied = await tacmesh('apply', '-f', file);
    assert.equal(applied.status, 0, applied.stderr);
    const list = await tacmesh('list');
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(
      list.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split('\t').slice(0, 2)),
      [
        ['c2', 'flash'],
        ['chat', 'immediate'],
      ],
    );
  });
});
