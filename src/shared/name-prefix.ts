/**
 * The start of every kernel object name tacmesh makes (namespaces, interfaces): `tm` + 5
 * base-36 characters, a run's or a node's prefix. `tacmesh testbed clean` finds what a crash
 * left behind by it.
 */
export const PREFIX_PATTERN = /^tm[0-9a-z]{5}/;
