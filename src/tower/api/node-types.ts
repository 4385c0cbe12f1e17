/**
 * What GET /api/v1/nodes answers: the types the tower (server.ts, registry.ts) writes and
 * the dashboard reads. Types only, so the page's build imports nothing else.
 */
import type { AgentEventRow, MonitorSettings, NodeStatusReport, Position, Slice } from '../model.js';

export interface NodeInfo {
  name: string;
  connected: boolean;
  /** The neighbour the node reaches the tower through over the mesh (its name when known); null when direct. */
  via: string | null;
  subnets: string[];
  slices: Slice[];
  position: Position | null;
  software: string;
  firstSeen: number;
  lastSeen: number;
  clockSkewMs: number;
  status: NodeStatusReport | null;
  monitor: MonitorSettings;
  monitorApplied: boolean;
  recordsStored: number;
  /** Its agent's newest events, oldest first. */
  events: AgentEventRow[];
}
