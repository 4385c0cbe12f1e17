import type { Lab } from '../../src/netlab/lab.js';
import { run } from '../../src/shared/exec.js';

/**
 * A management veth between this (host) namespace and `netns`: `<lab>mh` here with
 * `hostCidr`, `<lab>mg` in the namespace with `nodeCidr`, both up. Delete `mh` at cleanup.
 */
export async function mgmtVeth(lab: Lab, netns: string, hostCidr: string, nodeCidr: string): Promise<void> {
  await run('ip', [
    'link',
    'add',
    lab.ifname('mh'),
    'type',
    'veth',
    'peer',
    'name',
    lab.ifname('mg'),
    'netns',
    netns,
  ]);
  await run('ip', ['addr', 'add', hostCidr, 'dev', lab.ifname('mh')]);
  await run('ip', ['link', 'set', lab.ifname('mh'), 'up']);
  await lab.ip(netns, 'addr', 'add', nodeCidr, 'dev', lab.ifname('mg'));
  await lab.ip(netns, 'link', 'set', lab.ifname('mg'), 'up');
}
