import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NodeTowerLab, sleep, waitFor } from './support/node-tower.js';
import { sample, scrape } from './support/scrape.js';
import { Tool, toolPath } from './support/tools/index.js';

/** The node serves its metrics on its management address, which the host reaches. */
const NODE_METRICS = { host: '10.77.173.1', port: 9108 };

let t: NodeTowerLab;
before(async () => {
  t = new NodeTowerLab(173, 174);
  await t.start({ metrics: { listen: '127.0.0.1:0' } });
});
after(async () => {
  await t?.stop();
});

test('node and tower metrics move with traffic', async () => {
  t.startNode(['--metrics-listen', `${NODE_METRICS.host}:${NODE_METRICS.port}`]);
  const towerPort = t.tower?.metrics?.port as number;
  assert.ok(towerPort > 0, 'the tower serves metrics');
  const node = () => scrape(NODE_METRICS.host, NODE_METRICS.port);
  const tower = () => scrape('127.0.0.1', towerPort);
  await waitFor('the node connected and scrapable', async () => {
    const m = await node().catch(() => undefined);
    return m && sample(m, 'tacmesh_node_tower_up') === 1 && sample(m, 'tacmesh_node_batches_acked_total') > 0
      ? true
      : undefined;
  });
  await sleep(1500);
  const n0 = await node();
  const t0 = await tower();

  const paths = Array.from({ length: 50 }, (_, i) => `/m${i}`);
  const got = await new Tool(
    t.lab.spawnNode(t.cl, toolPath('http'), ['get', `http://${t.server}`, ...paths]),
  ).result<{ statuses: number[] }>();
  assert.equal(got.statuses.length, 50);
  await sleep(2500); // two export intervals
  assert.equal((await t.api('summary')).status, 200);
  const n1 = await node();
  const t1 = await tower();

  const delta = (a: Map<string, number>, b: Map<string, number>, name: string) =>
    sample(b, name) - sample(a, name);
  const packets = delta(n0, n1, 'tacmesh_node_packets_seen_total');
  const bytes = delta(n0, n1, 'tacmesh_node_bytes_seen_total');
  const flows = delta(n0, n1, 'tacmesh_node_flow_records_total');
  const http = delta(n0, n1, 'tacmesh_node_http_events_total');
  const stored = delta(t0, t1, 'tacmesh_tower_records_stored_total');
  console.log(JSON.stringify({ packets, bytes, flows, http, stored }));
  assert.ok(packets >= 50 * 8, `50 TCP connections: at least 8 packets each (${packets})`);
  assert.ok(bytes >= 50 * 500, `and their bytes (${bytes})`);
  assert.ok(flows >= 50, `a flow record per connection at least (${flows})`);
  assert.ok(http >= 100, `a request and a response line per GET (${http})`);
  assert.ok(delta(n0, n1, 'tacmesh_node_batches_acked_total') >= 2, 'batches acknowledged');
  assert.ok(sample(n1, 'tacmesh_node_flows_active') >= 0);
  assert.equal(sample(n1, 'tacmesh_node_flow_map_capacity'), 65536);
  assert.ok(sample(n1, 'tacmesh_node_export_lag_seconds') >= 0, 'the export lag is reported');
  assert.equal(sample(n1, 'tacmesh_node_spool_lost_records_total'), 0);
  assert.ok(sample(n1, 'tacmesh_node_spool_bytes') > 0);
  assert.equal(sample(n1, 'tacmesh_node_events_dropped_total'), 0);

  assert.ok(stored >= flows + http, `the tower stored what the node sent (${stored})`);
  assert.ok(delta(t0, t1, 'tacmesh_tower_batches_total') >= 2);
  assert.equal(sample(t1, 'tacmesh_tower_nodes_connected'), 1);
  const queries = (m: Map<string, number>) =>
    m.get('tacmesh_tower_query_seconds_count{route="summary"}') ?? 0;
  assert.equal(queries(t1) - queries(t0), 1, 'the API request was timed');
});
