import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFlow } from '../../node/export/encode.js';
import type { FlowRecord } from '../../node/monitor/records.js';
import { type NodeMessage, type NodeMessage__Output, proto } from '../../proto/index.js';
import { decodeBatch } from '../ingest/decode.js';
import { LocalityMap } from '../ingest/locality.js';
import { fromStored } from './columns.js';
import { DuckStore } from './duckdb.js';
import { FLOWS } from './tables.js';

test('a flow record reaches its stored row whole: every field on the wire, every column filled', async () => {
  const now = Date.now();
  // Every field a value no other field has, none of them zero or empty: a field dropped on
  // the way arrives as the wire's default (0, '') or not at all, and shows.
  const record: FlowRecord = {
    node: 'charlie',
    iface: 'rt-eth7',
    direction: 'egress',
    ipVersion: 6,
    src: '2001:db8:77::10',
    dst: '2001:db8:78::20',
    srcPort: 40123,
    dstPort: 5201,
    protocol: 17,
    packets: 321,
    bytes: 456_789,
    tcpFlags: 0x12,
    dscp: 46,
    firstSeen: now - 1500,
    lastSeen: now,
    ifaceKind: 'vm',
  };
  const seq = 7001;
  // What the tower adds: the node is the connection's, the places are the locality map's.
  const places = new LocalityMap();
  places.setNode('alpha', ['2001:db8:77::/48'], null);
  places.setNode('bravo', ['2001:db8:78::/48'], null);
  const added = { seq, locality: 'inter', srcNode: 'alpha', dstNode: 'bravo' };

  const sources = new Map<string, unknown>([...Object.entries(record), ...Object.entries(added)]);
  const values = [...sources.values()];
  assert.equal(new Set(values).size, values.length, 'the test values are all different');

  // node → wire bytes → tower, as the control plane carries it
  const message: NodeMessage = {
    batch: { firstSeq: seq, lastSeq: seq, flows: [encodeFlow(record, seq)], http: [], stats: [], links: [] },
  };
  const method = proto.tacmesh.v1.Tower.service.Connect;
  const received = method.requestDeserialize(method.requestSerialize(message)) as NodeMessage__Output;
  assert.ok(received.batch);
  const batch = decodeBatch(record.node, received.batch, places);

  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  try {
    assert.equal(await store.append(batch), 1);
    const result = await store.reader.runAndReadAll('SELECT * FROM flows');
    const [stored] = result.getRowObjectsJS();
    assert.ok(stored, 'the row is stored');
    assert.deepEqual(
      Object.keys(stored),
      FLOWS.columns.map((c) => c.name),
      'the table has the declared columns',
    );
    const unused = new Map(sources);
    for (const column of FLOWS.columns) {
      const value: unknown = fromStored(column, stored[column.name]);
      if (sources.has(column.field))
        assert.equal(
          value,
          sources.get(column.field),
          `column ${column.name} holds the record's ${column.field}`,
        );
      const from = [...unused].find(([, v]) => v === value)?.[0];
      assert.ok(from, `column ${column.name} holds ${String(value)}, a value the record did not send`);
      unused.delete(from);
    }
    assert.deepEqual([...unused.keys()], [], 'fields of the record no column holds');
  } finally {
    store.close();
  }
});
