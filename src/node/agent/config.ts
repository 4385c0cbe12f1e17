/**
 * The node agent's declarative config (node.yaml, YAML checked with zod): the node's
 * management interface, its uplinks, and its slices — each with its own virtual switch,
 * member VMs/containers, share of an uplink and monitoring. Every error names the file,
 * the field path (`slices[1].members[0].address`) and the problem. docs/agent.md has the
 * reference, examples/node.yaml a full example.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { ConfigError, ipv4Address, loadConfig, parseConfig } from '../../shared/config.js';
import { PREFIX_PATTERN } from '../../shared/name-prefix.js';
import { meshSchema, uplinkMeshSchema } from '../mesh/config.js';

export { ConfigError };

/** An IPv4 address with prefix length, e.g. 10.77.101.1/24. */
const cidr = z.string().refine((s) => {
  if (!ipaddr.isValidCIDR(s)) return false;
  return ipaddr.parseCIDR(s)[0].kind() === 'ipv4';
}, 'expected an IPv4 address with prefix length, e.g. 10.77.101.1/24');

const ifname = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'expected an interface name (1-15 letters, digits, _ . : -)');

const name = (max: number) =>
  z
    .string()
    .regex(
      new RegExp(`^[a-z][a-z0-9]{0,${max - 1}}$`),
      `expected a lowercase name of 1-${max} letters and digits, starting with a letter`,
    );

const monitoringSchema = z
  .object({
    l3: z.boolean().default(true),
    l4: z.boolean().default(true),
    l7: z.boolean().default(true),
    /** Emit one HTTP event in N. */
    sample: z.number().int().min(1).default(1),
    /** How often flow deltas are read, ms. */
    intervalMs: z.number().int().min(100).max(60_000).default(1000),
  })
  .strict();

const vmSchema = z
  .object({
    memoryMb: z.number().int().min(64).max(1024).default(128),
    cpus: z.number().int().min(1).max(4).default(1),
    /** URLs the VM's client requests in turn (an HTTP/1.1 GET by busybox nc), one every `fetchEverySec`. */
    fetch: z
      .array(z.string().regex(/^http:\/\/[^\s,]+$/, 'expected an http:// URL without spaces or commas'))
      .max(32)
      .default([]),
    fetchEverySec: z.number().min(0.05).max(60).default(1),
  })
  .strict()
  // They go on the kernel command line, which holds 2048 characters in all.
  .refine((v) => v.fetch.join(',').length <= 1500, {
    path: ['fetch'],
    message: 'the URLs add up to more than 1500 characters (they go on the kernel command line)',
  });

const memberSchema = z
  .object({
    name: name(12),
    /**
     * `container`: a network namespace on a veth port of the slice's switch; `vm`: a QEMU
     * microvm on a tap port of it (docs/agent.md, "VM members").
     */
    kind: z.enum(['container', 'vm']).default('container'),
    address: cidr,
    /** The VM's size and what its built-in client fetches (kind: vm only). */
    vm: vmSchema.optional(),
    /** Services this member serves, reported to the tower in the hello (docs/services.md). */
    services: z
      .array(
        z
          .object({
            name: z.string().min(1).max(64),
            port: z.number().int().min(0).max(65535),
            protocol: z.enum(['http', 'tcp', 'udp']).default('http'),
            precedence: z.enum(['flash', 'immediate', 'priority', 'routine']).default('routine'),
          })
          .strict(),
      )
      .max(16)
      .default([]),
  })
  .strict();

const sliceSchema = z
  .object({
    name: name(6),
    /** The uplink this slice's traffic leaves by (an `uplinks[].interface`). */
    uplink: ifname,
    /** Bridge the uplink's VLAN subinterface into the slice's switch (layer 2) instead of routing. */
    vlan: z.number().int().min(1).max(4094).optional(),
    /** The node's address on the slice's switch: the members' gateway (routed slices). */
    gateway: cidr.optional(),
    /** Guaranteed share of the uplink's rate, percent. */
    share: z.number().gt(0).max(100),
    /** What the slice may borrow up to when others leave capacity unused, percent (default 100). */
    ceil: z.number().gt(0).max(100).default(100),
    /** Attach flowmon to the slice's switch ports. */
    monitoring: z.boolean().default(true),
    members: z.array(memberSchema).default([]),
  })
  .strict();

const uplinkSchema = z
  .object({
    interface: ifname,
    /** The link's capacity in Mbit/s: the HTB root the slices' shares divide. */
    rateMbit: z.number().gt(0).max(100_000),
    address: cidr.optional(),
    /** Default route of the node's data plane. */
    gateway: ipv4Address.optional(),
    /** A radio link of the mesh: its neighbour (probed with STAMP) and its radio's DLEP (docs/mesh.md). */
    mesh: uplinkMeshSchema.optional(),
  })
  .strict();

const managementSchema = z
  .object({
    interface: ifname,
    address: cidr.optional(),
    gateway: ipv4Address.optional(),
    /** Control-plane destinations (the tower): reached through the management interface only. */
    tower: z.array(cidr).min(1),
    /** Routing table and rule priority of the management policy. */
    table: z.number().int().min(1).max(0xfffffff0).default(7700),
  })
  .strict();

const bpfSchema = z
  .object({
    /** The signed manifest of the eBPF objects (`tacmesh pki sign-bpf`). */
    manifest: z.string().min(1),
    /** Public keys (PEM files) trusted to sign it; several while a key is rotated. */
    trustedKeys: z.array(z.string().min(1)).min(1),
    /** Where the objects are (default: the build output, bpf/.output). */
    objectDir: z.string().min(1).optional(),
  })
  .strict();

const towerAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port, e.g. 10.77.120.2:7443');

const towerSchema = z
  .object({
    /**
     * host:port of the tower's control plane; with a standby tower (docs/bus.md), a list of
     * every tower's: the node sends to the one that leads.
     */
    address: z.union([towerAddress, z.array(towerAddress).min(1)]),
    /** The name in the tower's certificate. */
    name: z.string().default('tower'),
    /** Holds ca.crt, <node>.crt and <node>.key (mode 600). */
    pki: z.string().min(1),
  })
  .strict();

const baseSchema = z
  .object({
    node: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected a lowercase name (letters, digits, -), at most 32 long'),
    /**
     * Start of every name the agent makes: namespaces `<prefix>-<node>-<slice>-<member>`,
     * interfaces `<prefix>-<slice>` (bridges) and `<prefix>v<hash>` (ports).
     */
    prefix: z
      .string()
      .regex(
        new RegExp(`${PREFIX_PATTERN.source}$`),
        'expected tm + 5 lowercase letters or digits (e.g. tmnode1), the names `tacmesh testbed clean` finds',
      ),
    /** The network namespace the node's interfaces live in (default: the agent's own). */
    netns: z.string().min(1).optional(),
    management: managementSchema.optional(),
    uplinks: z.array(uplinkSchema).min(1),
    /** How the radio links (uplinks with `mesh`) are probed and judged. */
    mesh: meshSchema.default(meshSchema.parse({})),
    slices: z.array(sliceSchema).default([]),
    monitoring: monitoringSchema.prefault({}),
    bpf: bpfSchema.optional(),
    /** Where `tacmesh node run` sends telemetry (the management section keeps it on its own link). */
    tower: towerSchema.optional(),
    /** Where the node is, for the tower's map. */
    position: z
      .object({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) })
      .strict()
      .optional(),
    /** Further interfaces to watch besides the slices' switch ports (mesh links, uplinks): names or globs. */
    watch: z.array(z.string().min(1)).default([]),
    /** How often the agent checks for drift, ms. */
    checkIntervalMs: z.number().int().min(100).max(10_000).default(500),
  })
  .strict();

export const nodeConfigSchema = baseSchema.superRefine(checkConsistency);

export type NodeConfig = z.infer<typeof nodeConfigSchema>;
/** A VM member's size and client when its config has no vm section. */
export const VM_DEFAULTS = vmSchema.parse({});
export type SliceConfig = NodeConfig['slices'][number];
export type MemberConfig = SliceConfig['members'][number];
export type UplinkConfig = NodeConfig['uplinks'][number];

type Ctx = z.RefinementCtx;
type Raw = z.infer<typeof baseSchema>;

function unique<T>(
  ctx: Ctx,
  items: T[],
  key: (t: T) => string | undefined,
  path: (i: number) => (string | number)[],
  what: string,
) {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: path(i),
        message: `${what} ${k} is already used by entry ${first}`,
      });
    else seen.set(k, i);
  });
}

/**
 * Rules that span fields: references, uniqueness, shares, addresses inside their subnets.
 * zod runs this even when a field failed its own check; that field's error is the one to
 * show, so a value that cannot even be parsed here ends the cross-field checks quietly.
 */
function checkConsistency(c: Raw, ctx: Ctx): void {
  try {
    crossChecks(c, ctx);
  } catch {
    // reported by the field's own check
  }
}

function crossChecks(c: Raw, ctx: Ctx): void {
  const uplinks = new Set(c.uplinks.map((u) => u.interface));
  unique(
    ctx,
    c.uplinks,
    (u) => u.interface,
    (i) => ['uplinks', i, 'interface'],
    'interface',
  );
  unique(
    ctx,
    c.slices,
    (s) => s.name,
    (i) => ['slices', i, 'name'],
    'slice name',
  );
  unique(
    ctx,
    c.slices,
    (s) => (s.vlan === undefined ? undefined : String(s.vlan)),
    (i) => ['slices', i, 'vlan'],
    'VLAN',
  );
  if (c.management && uplinks.has(c.management.interface)) {
    ctx.addIssue({
      code: 'custom',
      path: ['management', 'interface'],
      message: `${c.management.interface} is an uplink; management needs its own interface`,
    });
  }
  const addresses: { addr: string; path: (string | number)[] }[] = [];
  const shareByUplink = new Map<string, number>();
  c.slices.forEach((s, i) => {
    if (!uplinks.has(s.uplink)) {
      ctx.addIssue({
        code: 'custom',
        path: ['slices', i, 'uplink'],
        message: `no uplink ${s.uplink} (have: ${[...uplinks].join(', ')})`,
      });
    }
    shareByUplink.set(s.uplink, (shareByUplink.get(s.uplink) ?? 0) + s.share);
    if (s.ceil < s.share)
      ctx.addIssue({
        code: 'custom',
        path: ['slices', i, 'ceil'],
        message: `ceil ${s.ceil} is below the share ${s.share}`,
      });
    if (s.gateway) addresses.push({ addr: s.gateway, path: ['slices', i, 'gateway'] });
    unique(
      ctx,
      s.members,
      (m) => m.name,
      (j) => ['slices', i, 'members', j, 'name'],
      'member name',
    );
    s.members.forEach((m, j) => {
      if (m.vm && m.kind !== 'vm')
        ctx.addIssue({
          code: 'custom',
          path: ['slices', i, 'members', j, 'vm'],
          message: `member ${m.name} is a ${m.kind}: a vm section needs kind: vm`,
        });
      const path = ['slices', i, 'members', j, 'address'];
      addresses.push({ addr: m.address, path });
      if (s.gateway && !sameSubnet(m.address, s.gateway)) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `${m.address} is outside the slice's gateway subnet ${subnet(s.gateway)}`,
        });
      }
    });
  });
  for (const [uplink, total] of shareByUplink) {
    if (total > 100 + 1e-9) {
      const i = c.slices.findLastIndex((s) => s.uplink === uplink);
      ctx.addIssue({
        code: 'custom',
        path: ['slices', i, 'share'],
        message: `the shares of uplink ${uplink} add up to ${total} %, more than 100 %`,
      });
    }
  }
  unique(
    ctx,
    addresses,
    (a) => a.addr.split('/')[0],
    (i) => addresses[i]?.path ?? [],
    'address',
  );
  // Routed slices must not overlap: the isolation rules tell them apart by subnet.
  const routed = c.slices.map((s, i) => ({ s, i })).filter(({ s }) => s.gateway && s.vlan === undefined);
  for (const [n, a] of routed.entries()) {
    for (const b of routed.slice(n + 1)) {
      if (a.s.gateway && b.s.gateway && overlaps(a.s.gateway, b.s.gateway)) {
        ctx.addIssue({
          code: 'custom',
          path: ['slices', b.i, 'gateway'],
          message: `subnet ${subnet(b.s.gateway)} overlaps slice ${a.s.name}'s ${subnet(a.s.gateway)}`,
        });
      }
    }
  }
}

export function subnet(addr: string): string {
  const [ip, len] = ipaddr.parseCIDR(addr);
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${ip.toString()}/${len}`).toString()}/${len}`;
}

function sameSubnet(a: string, b: string): boolean {
  return subnet(`${a.split('/')[0]}/${b.split('/')[1]}`) === subnet(b);
}

function overlaps(a: string, b: string): boolean {
  const [ia, la] = ipaddr.parseCIDR(a);
  const [ib, lb] = ipaddr.parseCIDR(b);
  const len = Math.min(la, lb);
  return ia.match(ib, len);
}

/** Reads and checks node.yaml; throws ConfigError naming the file, each bad field and why. */
export function loadNodeConfig(file: string): NodeConfig {
  return loadConfig(file, nodeConfigSchema);
}

export function parseNodeConfig(text: string, file = 'node.yaml'): NodeConfig {
  return parseConfig(file, text, nodeConfigSchema);
}
