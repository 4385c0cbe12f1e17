/**
 * Which stored session an open frame belongs to. A session taken into the sender's spool
 * keeps one origin id — the epoch in hex and the session id it was accepted under — through
 * every round of the carousel and every replay after a restart, each of which is a new
 * session on the link. The open frame's JSON carries it (and the round) next to the
 * OpenPayload fields, so the receiver delivers a session once and recognises its later rounds.
 */
import { encodeOpen, type OpenPayload } from './frame.js';

export interface SessionRound {
  origin: string;
  /** 0 = the live round; replays after a restart repeat the round they were in. */
  round: number;
}

export function originId(epoch: number, session: number): string {
  return `${epoch.toString(16)}-${session}`;
}

export function encodeRoundOpen(open: OpenPayload, r: SessionRound): Buffer {
  return encodeOpen({
    service: open.service,
    destination: open.destination,
    client: open.client,
    origin: r.origin,
    round: r.round,
  } as OpenPayload);
}

/** The origin and round of a decoded open payload; undefined for a session not from a spool. */
export function roundOf(open: OpenPayload): SessionRound | undefined {
  const { origin, round } = open as OpenPayload & Partial<SessionRound>;
  return typeof origin === 'string' && /^[0-9a-f]{1,8}-\d{1,10}$/.test(origin) && Number.isSafeInteger(round)
    ? { origin, round: round as number }
    : undefined;
}
