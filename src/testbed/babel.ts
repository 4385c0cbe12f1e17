/**
 * babeld's configuration for one node: Babel on every mesh link (fast hellos, so a cut
 * link is routed around within seconds; link-quality costs, so a lossy one is too),
 * announcing the node's slices, and — on the node with the external link — the default
 * route. The management network is never announced: it stays apart from the data plane.
 * Its local socket (read-only) is where the node reads its routes (docs/mesh.md).
 */
export function babelConfig(meshIfaces: string[], announceDefault: boolean, socket: string): string {
  return [
    '# written by tacmesh testbed up',
    // Read-only: the node reads its routes here (monitor), nobody changes babeld through it.
    `local-path ${socket}`,
    // babeld installs a route only once its smoothed metric is below the installed one's, and a
    // route starts smoothed at half of infinity (32767 or more): with the default 4 s half-life a
    // direct route learned a moment after a relayed one waited ~28 s (4 s × log2(32767/256)),
    // which left pairs with a clean direct link routed through a relay for the first half
    // minute and after every restore. A 1 s half-life keeps the damping, for ~7 s.
    'smoothing-half-life 1',
    // Radio links: `wireless` costs a link by the hellos it loses (ETX), so a lossy link is
    // routed around, not only a cut one.
    ...meshIfaces.map((i) => `interface ${i} type wireless hello-interval 1 update-interval 2`),
    // Connected subnets (kernel routes, protocol 2) of the slices: not the management network,
    // not the host link, not the /30s of the radio links themselves.
    'redistribute ip 10.77.240.0/24 le 32 deny',
    'redistribute ip 10.77.255.0/24 le 32 deny',
    'redistribute ip 10.77.0.0/16 ge 16 le 29 proto 2 allow',
    // The external link's default route, set by the agent (protocol boot, 3).
    ...(announceDefault ? ['redistribute ip 0.0.0.0/0 eq 0 proto 3 allow'] : []),
    'redistribute local deny',
    'redistribute deny',
    '',
  ].join('\n');
}
