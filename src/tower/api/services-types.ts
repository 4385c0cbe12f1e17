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
  /** Whether the service's QoS intent holds; null when it states none (no guaranteeBps). */
  intent: ServiceIntent | null;
}

/**
 * holds: on every hop the class carried its guarantee, or lost nothing (it asked for less);
 * violated: a hop dropped the class's packets below its guarantee; measuring: a hop has less
 * than a few seconds of counters; unenforced: a hop's node does not run the rules yet;
 * no-path: two instances have no mesh path; refused: the rules could not be compiled or set.
 */
export type IntentStatus = 'holds' | 'violated' | 'measuring' | 'unenforced' | 'no-path' | 'refused';

/** One link on the service's paths: the class's rate there against what crosses it. */
export interface IntentHop {
  node: string;
  iface: string;
  /** the guarantees of the flows that cross this link, in this class (bit/s) */
  guaranteeBps: number;
  /** the class's rate on the link over `windowMs`, from the node's QoS counters; null unmeasured */
  rateBps: number | null;
  /** packets of the class the link dropped in the window */
  drops: number | null;
  windowMs: number;
  /** the node runs the policy version that holds the rules */
  enforced: boolean;
}

/** One direction between two instances, on the path the tower compiled it for. */
export interface IntentFlow {
  from: string;
  to: string;
  /** the instances' nodes and the relays between them */
  hops: string[];
  status: 'ok' | 'unreported' | 'no-route' | 'unknown-hop' | 'loop' | 'local';
}

/** GET /api/v1/services/{name}/intent, and each row's `intent`. */
export interface ServiceIntent {
  guaranteeBps: number;
  qosClass: string;
  status: IntentStatus;
  /** why, when it does not hold */
  why: string | null;
  /** the hop that falls shortest of its guarantee while dropping; when none does, the busiest */
  worstHop: IntentHop | null;
  hops: IntentHop[];
  flows: IntentFlow[];
  /** the service's p95 from its golden signals (HTTP only) */
  p95Ms: number | null;
  /** the policy version that holds the rules, and since when (ms) */
  version: number;
  compiledMs: number | null;
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
