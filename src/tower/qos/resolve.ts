/**
 * One node's share of the policy, in wire form: its links (with the closed loop's lowered
 * ceilings), every class, and the rules in its scope, HTTP hosts replaced by the server
 * addresses the monitor saw for them. A rule whose hosts resolve to no address yet is left
 * out: with no destination it would match everything. An `auto` link gets the radio's
 * maximum rate from its mesh reports, and is left out until the first one.
 */
import type { QosPolicy } from '../../proto/index.js';
import type { QosPolicySpec } from './model.js';

/** node → iface → class → lowered ceiling (bps) */
export type CeilingLimits = Map<string, Map<string, Map<string, number>>>;

export function nodePolicy(
  spec: QosPolicySpec,
  version: number,
  node: string,
  limits: CeilingLimits,
  hostAddresses: (host: string) => string[],
  autoRate: (node: string, iface: string) => number | undefined,
): QosPolicy {
  const links = spec.links.flatMap((l) => {
    if (l.node !== node) return [];
    const rateBps = l.rateBps === 'auto' ? autoRate(node, l.iface) : l.rateBps;
    return rateBps ? [{ iface: l.iface, rateBps }] : [];
  });
  const rules = spec.rules.flatMap((r) => {
    if (r.scope?.node && r.scope.node !== node) return [];
    const resolved = r.httpHosts.flatMap(hostAddresses);
    if (r.httpHosts.length > 0 && resolved.length === 0) return [];
    return [
      {
        name: r.name,
        class: r.class,
        srcPrefixes: r.srcPrefixes,
        dstPrefixes: [...r.dstPrefixes, ...resolved],
        protocol: r.protocol,
        srcPortMin: r.srcPorts?.[0] ?? 0,
        srcPortMax: r.srcPorts?.[1] ?? 0,
        dstPortMin: r.dstPorts?.[0] ?? 0,
        dstPortMax: r.dstPorts?.[1] ?? 0,
        matchDscp: r.matchDscp ?? -1,
        iface: r.scope?.iface ?? '',
        policeBps: r.police?.bps ?? 0,
        policeRemark: r.police?.action === 'remark',
        policeDscp: r.police?.dscp ?? 0,
      },
    ];
  });
  return {
    version,
    classes: spec.classes.map((c) => ({ ...c })),
    rules,
    links: links.map((l) => ({
      iface: l.iface,
      rateBps: l.rateBps,
      limits: [...(limits.get(node)?.get(l.iface) ?? new Map<string, number>())].map(([cls, ceilingBps]) => ({
        class: cls,
        ceilingBps,
      })),
    })),
  };
}
