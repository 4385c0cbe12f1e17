/**
 * Test support: a node namespace in a Lab with an uplink to a "wan" namespace and a
 * management link to a "tower" namespace, and a two-slice node config for it. Addresses
 * 10.77.100.0/24 .. 10.77.140.0/24 only (the agent's tests' range).
 *
 *   slice a  10.77.101.0/24  members a1 .10, a2 .11   gateway .1 on the slice switch
 *   slice b  10.77.102.0/24  members b1 .10, b2 .11
 *   uplink   node 10.77.110.1/24  <->  wan 10.77.110.2/24
 *            (or, with radioMbit, <-> radio 10.77.110.2 ==TBF==> 10.77.111.1 <-> wan 10.77.111.2)
 *   mgmt     node 10.77.120.1/24  <->  tower 10.77.120.2/24
 */
import { createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ffi } from '../../src/bpf/libbpf.js';
import { objectPath } from '../../src/bpf/paths.js';
import type { Lab } from '../../src/netlab/lab.js';
import { limitRate } from '../../src/netlab/link.js';
import { type NodeConfig, parseNodeConfig } from '../../src/node/agent/config.js';
import { type BpfTrust, generateSigningKey, SERIAL_FILE, signManifest } from '../../src/pki/bpf-manifest.js';
import { defaultObjectDir } from '../../src/pki/cli.js';
import { run } from '../../src/shared/exec.js';
import { libc, loadLibrary } from '../../src/shared/libc.js';

export interface TestNode {
  netns: string;
  wan: string;
  tower: string;
  uplink: string;
  mgmt: string;
  config: NodeConfig;
  /** The config as YAML text (what a node.yaml would hold). */
  yaml: string;
}

export interface TestNodeOptions {
  /** A directory for the manifest and keys; with it the config has a signed bpf section. */
  dir?: string;
  rateMbit?: number;
  shares?: [number, number];
  /** Reach the wan through a "radio" namespace whose link to it is a TBF at this rate (wan: 10.77.111.2). */
  radioMbit?: number;
  checkIntervalMs?: number;
}

/** Signs the built objects with a fresh key in `dir`; returns the manifest and public key paths. */
export function signObjects(
  dir: string,
  objects = [join(defaultObjectDir(), 'flowmon.bpf.o')],
): { manifest: string; publicKey: string; privatePem: string } {
  const pair = generateSigningKey();
  const publicKey = join(dir, 'bpf.pub');
  writeFileSync(publicKey, pair.publicPem);
  const keyPath = join(dir, 'bpf.key');
  writeFileSync(keyPath, pair.privatePem, { mode: 0o600 });
  const manifest = join(dir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify(signManifest(objects, createPrivateKey(pair.privatePem))));
  return { manifest, publicKey, privatePem: pair.privatePem };
}

/** A signed manifest of `programs`' built objects in `dir`, trusted as a node trusts it (serial in `dir`). */
export function testTrust(dir: string, programs = ['flowmon', 'qos']): BpfTrust {
  const { manifest, publicKey } = signObjects(
    dir,
    programs.map((p) => objectPath(p)),
  );
  return { manifest, trustedKeys: [publicKey], serialFile: join(dir, SERIAL_FILE) };
}

export async function makeTestNode(lab: Lab, options: TestNodeOptions = {}): Promise<TestNode> {
  const netns = await lab.netns('n1', { ipv6: false });
  const wan = await lab.netns('wan', { ipv6: false });
  const tower = await lab.netns('tower', { ipv6: false });
  const mg = await lab.veth({ netns, name: lab.ifname('mg') }, { netns: tower, addr: '10.77.120.2/24' });
  const slices = ['10.77.101.0/24', '10.77.102.0/24'];
  let up: { a: string };
  if (options.radioMbit) {
    // node --uplink-- radio ==(TBF: the radio link's rate, a plain FIFO)==> wan
    const radio = await lab.netns('radio', { ipv6: false });
    up = await lab.veth({ netns, name: lab.ifname('up') }, { netns: radio, addr: '10.77.110.2/24' });
    const air = await lab.veth(
      { netns: radio, addr: '10.77.111.1/24' },
      { netns: wan, addr: '10.77.111.2/24' },
    );
    await limitRate(lab, radio, air.a, options.radioMbit);
    await lab.exec(radio, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    for (const net of slices) await lab.ip(radio, 'route', 'add', net, 'via', '10.77.110.1');
    for (const net of [...slices, '10.77.110.0/24'])
      await lab.ip(wan, 'route', 'add', net, 'via', '10.77.111.1');
  } else {
    up = await lab.veth({ netns, name: lab.ifname('up') }, { netns: wan, addr: '10.77.110.2/24' });
    // The far end routes the slices back through the node.
    for (const net of slices) await lab.ip(wan, 'route', 'add', net, 'via', '10.77.110.1');
  }
  const [shareA, shareB] = options.shares ?? [50, 50];
  const raw = {
    node: 'n1',
    prefix: lab.prefix,
    netns,
    ...(options.checkIntervalMs ? { checkIntervalMs: options.checkIntervalMs } : {}),
    management: { interface: mg.a, address: '10.77.120.1/24', tower: ['10.77.120.2/32'] },
    uplinks: [
      {
        interface: up.a,
        rateMbit: options.rateMbit ?? 100,
        address: '10.77.110.1/24',
        ...(options.radioMbit ? { gateway: '10.77.110.2' } : {}),
      },
    ],
    slices: [
      {
        name: 'a',
        uplink: up.a,
        gateway: '10.77.101.1/24',
        share: shareA,
        members: [
          { name: 'a1', address: '10.77.101.10/24' },
          { name: 'a2', address: '10.77.101.11/24' },
        ],
      },
      {
        name: 'b',
        uplink: up.a,
        gateway: '10.77.102.1/24',
        share: shareB,
        members: [
          { name: 'b1', address: '10.77.102.10/24' },
          { name: 'b2', address: '10.77.102.11/24' },
        ],
      },
    ],
    ...(options.dir ? { bpf: bpfSection(options.dir) } : {}),
  };
  const yaml = stringify(raw);
  return { netns, wan, tower, uplink: up.a, mgmt: mg.a, config: parseNodeConfig(yaml), yaml };
}

function bpfSection(dir: string) {
  const { manifest, publicKey } = signObjects(dir);
  return { manifest, trustedKeys: [publicKey] };
}

/** Exit status of ping from a namespace: true when one echo came back within a second. */
export async function pings(netns: string, to: string): Promise<boolean> {
  return run('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', to]).then(
    () => true,
    () => false,
  );
}

const libbpf = loadLibrary('libbpf.so.1');
const linkFdById = libbpf.func('int bpf_link_get_fd_by_id(uint32_t id)') as (id: number) => number;
const BPF_LINK_TYPE_TCX = 11;

/**
 * The ids of the tcx links that hold `progIds` on interface `ifindex` (bpftool 7.1 cannot
 * show a tcx link's interface: struct bpf_link_info is read here instead).
 */
export async function tcxLinkIds(ifindex: number, progIds: number[]): Promise<number[]> {
  const { stdout } = await run('bpftool', ['-j', 'link', 'show']);
  const ids: number[] = [];
  for (const l of JSON.parse(stdout || '[]') as { id: number; prog_id: number }[]) {
    if (!progIds.includes(l.prog_id)) continue;
    const fd = linkFdById(l.id);
    if (fd < 0) continue; // gone meanwhile
    try {
      // struct bpf_link_info: type, id, prog_id (u32 each), then the union at 16: tcx.ifindex.
      const info = Buffer.alloc(64);
      if (ffi.objInfo(fd, info, [info.length]) < 0) continue;
      if (info.readUInt32LE(0) === BPF_LINK_TYPE_TCX && info.readUInt32LE(16) === ifindex) ids.push(l.id);
    } finally {
      libc.closeFd(fd);
    }
  }
  return ids;
}
