/**
 * What the QoS API answers (src/tower/qos/routes.ts; docs/api/openapi.yaml): the types the
 * tower returns and the dashboard's QoS page reads. The policy itself is the one the tower
 * validates (src/tower/qos/model.ts). Types only, so the page's build imports nothing else.
 */
import type { QosAuditRow } from '../model.js';
import type { QosPolicySpec } from '../qos/model.js';

/** Per link and class: bits per second over the node's last report interval, and drops in it. */
export interface QosRate {
  iface: string;
  /** "*" for the whole link */
  class: string;
  bps: number;
  drops: number;
}

/** A node's QoS as it reported it. */
export interface QosNodeView {
  connected: boolean;
  /** The policy version the node runs. */
  applied: number;
  /** The last policy it could not apply, and why. */
  refused: { version: number; error: string } | null;
  reportedMs: number;
  rates: QosRate[];
}

/** An `auto` link: the rate its classes are built at, and what its newest mesh report measured. */
export interface AutoLinkView {
  /** bit/s; null before its first mesh report */
  rateBps: number | null;
  capacityBps: number;
  loadTxBps: number;
  state: string;
}

/** GET /qos: the policy in force with each node's state. */
export interface QosView {
  version: number;
  policy: QosPolicySpec;
  /** Ceilings the closed loop lowered, by "node/iface" and class, in bit/s. */
  limits: Record<string, Record<string, number>>;
  /** Per `auto` link, by "node/iface". */
  measured: Record<string, AutoLinkView>;
  nodes: Record<string, QosNodeView>;
}

/** POST /qos/validate */
export interface QosCheck {
  ok: boolean;
  errors: string[];
}

/** PUT /qos: the version set, and whether every connected node runs it (or refused it) already. */
export interface QosApplied {
  version: number;
  settled: boolean;
  nodes: Record<string, QosNodeView>;
}

/** GET /qos/audit: newest first. */
export type QosAuditLog = QosAuditRow[];
