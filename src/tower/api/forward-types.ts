/** GET /api/v1/forward: where the tower's records go one way, and that link's health as its sender knows it. Shared with the dashboard. */

export type DiodeLinkState = 'sending' | 'dropping' | 'stalled' | 'unreachable' | 'starting';

export interface DiodeSenderCounters {
  rateMbit: number;
  heartbeats: number;
  datagrams: number;
  frames: number;
  repairs: number;
  copies: number;
  fecBlocks: number;
  udpForwarded: number;
  udpDropped: number;
  sendErrors: number;
  unexpectedInbound: number;
}

export interface ForwardView {
  /** What the records are forwarded to (a name for people, e.g. "headquarters"). */
  label: string;
  /** The tower's flow records as IPFIX: where to, and how many went. */
  ipfix: {
    collector: string;
    records: number;
    messages: number;
    resent: number;
    notRoutable: number;
    lastForwardMs: number | null;
  } | null;
  /**
   * The one-way link as its sender says it sent (from the diode sender's metrics): nothing
   * comes back over a diode, so this is all anyone on this side can know.
   */
  diode: {
    metrics: string;
    state: DiodeLinkState;
    why: string;
    lastScrapeMs: number | null;
    sender: DiodeSenderCounters | null;
    /** Over the last scrape interval. */
    perSecond: { datagrams: number; heartbeats: number; udpForwarded: number; udpDropped: number } | null;
  } | null;
}
