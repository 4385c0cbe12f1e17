/**
 * What the tower says while a scenario runs, read from its API every few seconds: each
 * service's QoS intent (the tower answers it for the last 10 s only, so its share of the
 * scenario is the share of these readings), the closed loop's limits and each node's class
 * rates (the report's "bulk on the degraded link against the loop's cap"), and the records
 * that came through a relay when the scenario started (the tower counts them since it
 * started).
 */
import type { NodeInfo } from '../../tower/api/node-types.js';
import type { QosRate, QosView } from '../../tower/api/qos-types.js';
import type { IntentStatus, ServiceRow } from '../../tower/api/services-types.js';
import { type TestbedState, towerApi } from '../testbed.js';

/** How often the tower is read: the intents' 10 s window is sampled several times over. */
export const WATCH_EVERY_MS = 3000;

export interface WatchSample {
  timeMs: number;
  /** by service with an intent */
  intents: Record<string, IntentStatus>;
  /** the loop's lowered ceilings, by "node/iface" and class (bit/s) */
  limits: QosView['limits'];
  /** by node: per link and class, over the node's last report interval */
  rates: Record<string, QosRate[]>;
}

export interface ScenarioWatch {
  /** Σ recordsRelayed over /nodes when the watch started */
  relayedAtStart: number;
  samples: WatchSample[];
  /** Stops reading; resolves once the reading under way is done. */
  stop(): Promise<void>;
}

/** Σ recordsRelayed over the tower's nodes: the records that came through a relay since it started. */
export const relayedOf = (nodes: NodeInfo[]) => nodes.reduce((s, n) => s + n.recordsRelayed, 0);

/** relayedOf the tower's nodes now. */
export const relayedNow = async (state: TestbedState) =>
  relayedOf(await towerApi<NodeInfo[]>(state, 'nodes'));

export async function watchScenario(state: TestbedState, everyMs = WATCH_EVERY_MS): Promise<ScenarioWatch> {
  const samples: WatchSample[] = [];
  const relayedAtStart = await relayedNow(state);
  const read = async () => {
    const [rows, qos] = await Promise.all([
      towerApi<ServiceRow[]>(state, 'services?last=1m'),
      towerApi<QosView>(state, 'qos'),
    ]);
    samples.push({
      timeMs: Date.now(),
      intents: Object.fromEntries(rows.flatMap((r) => (r.intent ? [[r.name, r.intent.status]] : []))),
      limits: qos.limits,
      rates: Object.fromEntries(Object.entries(qos.nodes).map(([n, v]) => [n, v.rates])),
    });
  };
  // A reading the tower does not answer (a busy moment) is left out, not fatal to the scenario.
  let reading: Promise<void> = read().catch(() => undefined);
  const timer = setInterval(() => {
    reading = reading.then(() => read().catch(() => undefined));
  }, everyMs);
  return {
    relayedAtStart,
    samples,
    stop: async () => {
      clearInterval(timer);
      await reading;
    },
  };
}
