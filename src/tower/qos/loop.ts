/**
 * The closed loop, per link: from each node's per-class counters it decides when to lower
 * the ceilings of the lower classes so the higher ones keep their guarantee, and when to
 * restore them. Pure: samples in, decisions out (the QoS service applies, audits and pushes).
 *
 * Congestion starts when the link carries >= congestedAt of its rate for holdMs while some
 * class below the top priority uses more than its guarantee; the loop then caps every class
 * below the top priority at its guarantee. The classes that may still fill the link are the
 * top ones, so when the real bottleneck is downstream (a radio that fell below the rate the
 * policy names) the traffic that reaches it is what the guarantees promise. Congestion ends
 * when every capped class sends < clearAt of its cap for holdMs: their demand is gone, and
 * the caps are lifted (one class still pressing its cap would congest the link again at
 * once). Two thresholds and a hold time: hysteresis, no flapping.
 *
 * On an `auto` link the rate is the capacity the mesh reports measure, and may move. Its
 * classes are built at the radio's maximum: while the radio carries that, HTB is the
 * bottleneck and its priorities serve the top classes, so a full link is left alone. A
 * radio below it is the downstream bottleneck: a full link is congested, and one that fell
 * below congestedAt of the maximum is congested as soon as a lower class uses more than its
 * guarantee, without waiting for the link to fill (senders on a lossy radio, TCP under 2 %
 * loss, may never carry 90 % of it, while the radio's queue already delays the top
 * classes). The caps are also lifted once the capacity has grown so far that what congested
 * the link when they were set would fill less than clearAt of it (a radio back from 3 to
 * 20 Mbit/s).
 */
import type { QosAutoSpec, QosClassSpec } from './model.js';
import { mbit } from './validate.js';

export interface LinkSample {
  timeMs: number;
  /** the link's rate: the policy's, or for an `auto` link its measured capacity */
  rateBps: number;
  /** bits per second the link carried over the last interval */
  linkBps: number;
  /** per class: bits per second over the last interval */
  classBps: Map<string, number>;
  /** an `auto` link: the rate its classes are built at (the radio's maximum) */
  builtAtBps?: number;
}

export type LoopDecision =
  | { action: 'auto-lower'; limits: Map<string, number>; reason: string }
  | { action: 'auto-restore'; reason: string };

interface LinkState {
  limited: Map<string, number> | undefined;
  /** the link's rate when the caps were set */
  limitedAtBps: number;
  /** since when the condition to act has held */
  since: number | undefined;
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

export class ClosedLoop {
  private readonly links = new Map<string, LinkState>();

  /** The caps in force on `link`, if the loop lowered them. */
  limits(link: string): Map<string, number> | undefined {
    return this.links.get(link)?.limited;
  }

  forget(link: string): void {
    this.links.delete(link);
  }

  step(link: string, s: LinkSample, classes: QosClassSpec[], auto: QosAutoSpec): LoopDecision | undefined {
    let st = this.links.get(link);
    if (!st) {
      st = { limited: undefined, limitedAtBps: 0, since: undefined };
      this.links.set(link, st);
    }
    if (classes.length === 0) return undefined;
    const top = Math.min(...classes.map((c) => c.priority));
    const lower = classes.filter((c) => c.priority > top);
    const util = s.linkBps / s.rateBps;
    const hold = (cond: boolean): boolean => {
      if (!cond) {
        st.since = undefined;
        return false;
      }
      st.since ??= s.timeMs;
      return s.timeMs - st.since >= auto.holdMs;
    };
    if (!st.limited) {
      const borrowing = lower.filter(
        (c) => (s.classBps.get(c.name) ?? 0) > Math.max(c.guaranteedBps, 8000) * 1.05,
      );
      const downstream = s.builtAtBps === undefined || s.rateBps < s.builtAtBps;
      const fallen = s.builtAtBps !== undefined && s.rateBps < auto.congestedAt * s.builtAtBps;
      const congested = (util >= auto.congestedAt && downstream) || fallen;
      if (!hold(congested && borrowing.length > 0)) return undefined;
      const limits = new Map(
        lower.map((c) => [c.name, Math.max(c.guaranteedBps, Math.round(s.rateBps / 100))]),
      );
      st.limited = limits;
      st.limitedAtBps = s.rateBps;
      st.since = undefined;
      return {
        action: 'auto-lower',
        limits,
        reason: `link ${link} ${util >= auto.congestedAt ? `at ${pct(util)} of its rate` : `fallen to ${mbit(s.rateBps)} of the ${mbit(s.builtAtBps ?? 0)} its classes are built at`} for ${auto.holdMs} ms with ${borrowing.map((c) => `"${c.name}"`).join(', ')} above guarantee: ${[...limits].map(([c, v]) => `${c} ceiling → ${(v / 1e6).toFixed(3)} Mbit/s`).join(', ')}`,
      };
    }
    const capped = [...st.limited].reduce((sum, [, v]) => sum + v, 0);
    const sending = [...st.limited.keys()].reduce((sum, c) => sum + (s.classBps.get(c) ?? 0), 0);
    const idle = [...st.limited].every(([c, cap]) => (s.classBps.get(c) ?? 0) < auto.clearAt * cap);
    const grown = s.rateBps * auto.clearAt >= st.limitedAtBps;
    if (!hold(idle || grown)) return undefined;
    const was = st.limitedAtBps;
    st.limited = undefined;
    st.since = undefined;
    return {
      action: 'auto-restore',
      reason: idle
        ? `link ${link}: each capped class sends under ${pct(auto.clearAt)} of its cap (together ${pct(sending / capped)}) for ${auto.holdMs} ms: ceilings restored`
        : `link ${link}: its capacity is back at ${mbit(s.rateBps)} from ${mbit(was)} for ${auto.holdMs} ms: ceilings restored`,
    };
  }
}
