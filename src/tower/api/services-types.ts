/**
 * What the services API answers (docs/services.md): types only, shared by the tower
 * (src/tower/services/routes.ts) and the dashboard. Latencies in ms, rates per second, null
 * where nothing was measured.
 */

export type Precedence = 'flash' | 'immediate' | 'priority' | 'routine';
export type ServiceHealth = 'ok' | 'degraded' | 'failing' | 'idle';

export interface ServiceInstanceView {
  node: string;
  slice?: string | undefined;
  member?: string | undefined;
  address: string;
  port: number;
  protocol: 'http' | 'tcp' | 'udp';
}

export interface ServiceObjective {
  targetP95Ms: number;
  errorBudgetPct: number;
}

/** Golden signals of traffic to a service (or between a pair) over a window. */
export interface GoldenSignals {
  requests: number;
  rps: number;
  errors4xx: number;
  errors5xx: number;
  /** 4xx and 5xx together, % of the requests */
  errorPct: number;
  /** the server's own time: request to response at the server's node */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** the time the client sees: at the client's node */
  clientP95Ms: number | null;
  /** clientP95Ms − p95Ms: what the network adds */
  networkP95Ms: number | null;
  /** bytes/s both ways */
  bps: number;
}

/** GET /api/v1/services: one row per service. */
export interface ServiceRow extends GoldenSignals {
  name: string;
  precedence: Precedence;
  qosClass: string;
  declaredBy: string[];
  instances: ServiceInstanceView[];
  objective: ServiceObjective | null;
  health: ServiceHealth;
}

export interface HealthThresholdsView {
  degradedAbovePct: number;
  failingAtPct: number;
}

export interface ServiceGraphNode {
  /** the service's name, or the address of a client no service declares */
  id: string;
  kind: 'service' | 'client';
  health: ServiceHealth;
  precedence: Precedence | null;
}

export interface ServiceGraphEdge {
  from: string;
  to: string;
  rps: number;
  requests: number;
  errorPct: number;
  p95Ms: number | null;
  clientP95Ms: number | null;
  networkP95Ms: number | null;
  bps: number;
}

/** GET /api/v1/services/graph */
export interface ServiceGraph {
  nodes: ServiceGraphNode[];
  edges: ServiceGraphEdge[];
  thresholds: HealthThresholdsView;
}

export interface ServicePoint {
  timeMs: number;
  rps: number;
  errorPct: number;
  p95Ms: number | null;
  /** what the objective missed in this step, null when it held */
  breach: string | null;
}

/** GET /api/v1/services/{name}/series */
export interface ServiceSeries {
  name: string;
  objective: ServiceObjective | null;
  stepMs: number;
  points: ServicePoint[];
  breaches: { fromMs: number; toMs: number; what: string }[];
}

/** GET /api/v1/services/refused: node declarations the registry refused. */
export interface ServiceRefusal {
  source: string;
  service: string;
  reason: string;
}
