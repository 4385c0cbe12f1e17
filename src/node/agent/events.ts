/** What the agent reports: one record per thing it found wrong and what it did about it. */
export interface AgentEvent {
  /** When the action finished, ms since the epoch. */
  time: number;
  node: string;
  /** What it concerns: `slice a switch tm1x2y3-a`, `slice a member web`, `uplink wan0 shaping`, ... */
  entity: string;
  /** What was wrong: `missing`, `down`, `flowmon detached`, ... */
  problem: string;
  /** What the agent did, in words: `create bridge tm1x2y3-a`. */
  action: string;
  ok: boolean;
  error?: string;
  /** `apply`: a config was applied; `drift`: found by the reconcile loop; `remove`: node removal. */
  cause: 'apply' | 'drift' | 'remove';
  /** From the start of the round that noticed the problem to the end of this action, ms. */
  tookMs: number;
}

export type AgentEventHandler = (event: AgentEvent) => void;
