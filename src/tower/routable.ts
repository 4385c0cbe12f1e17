/**
 * Which flows are traffic between hosts, not a link's own chatter: not link-local, not from
 * the unspecified address, not to broadcast or multicast. The dashboard's queries count only
 * these (as SQL), and the tower forwards only these to headquarters (as a predicate): the two
 * forms stand here together, and routable.test.ts keeps them equal.
 */

export const ROUTABLE_SQL = `NOT (src LIKE 'fe80:%' OR src = '::' OR dst LIKE 'fe80:%' OR dst LIKE 'ff%:%'
  OR dst = '255.255.255.255' OR regexp_matches(dst, '^2(2[4-9]|3[0-9])\\.'))`;

const MULTICAST_V4 = /^2(2[4-9]|3[0-9])\./;

export function routable(src: string, dst: string): boolean {
  return !(
    src.startsWith('fe80:') ||
    src === '::' ||
    dst.startsWith('fe80:') ||
    (dst.startsWith('ff') && dst.indexOf(':', 2) >= 0) ||
    dst === '255.255.255.255' ||
    MULTICAST_V4.test(dst)
  );
}
