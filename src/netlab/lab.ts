/**
 * The network-namespace kit every kernel test and the testbed build on: namespaces,
 * veth pairs, bridges, addresses and routes with per-run unique names, commands and Node
 * processes run inside a namespace, and guaranteed cleanup.
 *
 * Names: a run prefix `tm` + 5 base-36 characters. Namespaces are `<prefix>-<name>`,
 * interfaces `<prefix><name>` (15 characters at most, the kernel's limit). `cleanLeftovers`
 * removes everything that matches the pattern, after a crash.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type RunOptions, run } from '../shared/exec.js';
import { PREFIX_PATTERN } from '../shared/name-prefix.js';
import { requireProgram, requirePrograms } from '../shared/programs.js';

const IFNAMSIZ = 15;

export function newRunPrefix(): string {
  const n = randomBytes(4).readUInt32LE(0) % 36 ** 5;
  return `tm${n.toString(36).padStart(5, '0')}`;
}

export interface VethEnd {
  netns: string;
  /** Interface name; by default `<prefix><netns short name><n>`. */
  name?: string;
  /** Address with prefix length, e.g. 10.77.1.1/24. */
  addr?: string;
}

export interface Veth {
  a: string;
  b: string;
}

/** Checks that the caller is root and the kernel can do namespaces, with a clear message otherwise. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this needs root (network namespaces, eBPF): run it as root, e.g. with sudo');
  }
}

export class Lab {
  readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private vethCount = 0;

  constructor(readonly prefix = newRunPrefix()) {
    requireRoot();
    requirePrograms(['ip', 'tc'], 'network namespaces and links');
  }

  /**
   * Creates `<prefix>-<name>` with loopback up; returns its full name. With `ipv6: false`
   * the namespace sends no IPv6 at all (no router solicitations), so packet counts are exact.
   */
  async netns(name: string, options: { ipv6?: boolean } = {}): Promise<string> {
    const full = `${this.prefix}-${name}`;
    await run('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    if (options.ipv6 === false) {
      await this.exec(full, 'sysctl', [
        '-q',
        '-w',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
      ]);
    }
    await this.ip(full, 'link', 'set', 'lo', 'up');
    return full;
  }

  ifname(name: string): string {
    const full = `${this.prefix}${name}`;
    if (full.length > IFNAMSIZ)
      throw new Error(`interface name ${full} is longer than ${IFNAMSIZ} characters`);
    return full;
  }

  /** `ip` in a namespace (or the current one when netns is undefined). */
  ip(netns: string | undefined, ...args: string[]) {
    return run('ip', netns ? ['-n', netns, ...args] : args);
  }

  tc(netns: string | undefined, ...args: string[]) {
    return run('tc', netns ? ['-n', netns, ...args] : args);
  }

  /** A veth pair between two namespaces, both ends up, with optional addresses. */
  async veth(a: VethEnd, b: VethEnd): Promise<Veth> {
    const n = this.vethCount++;
    const an = a.name ?? this.ifname(`v${n}a`);
    const bn = b.name ?? this.ifname(`v${n}b`);
    await run('ip', [
      'link',
      'add',
      an,
      'netns',
      a.netns,
      'type',
      'veth',
      'peer',
      'name',
      bn,
      'netns',
      b.netns,
    ]);
    for (const [end, name] of [
      [a, an],
      [b, bn],
    ] as const) {
      if (end.addr) await this.ip(end.netns, 'addr', 'add', end.addr, 'dev', name);
      await this.ip(end.netns, 'link', 'set', name, 'up');
    }
    return { a: an, b: bn };
  }

  /** A Linux bridge (a slice's virtual switch) in a namespace. */
  async bridge(netns: string, name: string, addr?: string): Promise<string> {
    await this.ip(netns, 'link', 'add', name, 'type', 'bridge');
    if (addr) await this.ip(netns, 'addr', 'add', addr, 'dev', name);
    await this.ip(netns, 'link', 'set', name, 'up');
    return name;
  }

  async enslave(netns: string, iface: string, bridge: string): Promise<void> {
    await this.ip(netns, 'link', 'set', iface, 'master', bridge);
  }

  async macOf(netns: string, iface: string): Promise<string> {
    const { stdout } = await this.ip(netns, '-j', 'link', 'show', 'dev', iface);
    const [info] = JSON.parse(stdout) as { address: string }[];
    if (!info) throw new Error(`no interface ${iface} in ${netns}`);
    return info.address;
  }

  /**
   * Permanent neighbour entries on both ends of a veth: no ARP crosses the link (a one-way
   * link cannot answer it) and no ARP packet disturbs an exact count.
   */
  async staticNeighbours(
    a: { netns: string; iface: string; ip: string },
    b: { netns: string; iface: string; ip: string },
  ) {
    const [macA, macB] = await Promise.all([this.macOf(a.netns, a.iface), this.macOf(b.netns, b.iface)]);
    await this.ip(a.netns, 'neigh', 'replace', b.ip, 'lladdr', macB, 'dev', a.iface, 'nud', 'permanent');
    await this.ip(b.netns, 'neigh', 'replace', a.ip, 'lladdr', macA, 'dev', b.iface, 'nud', 'permanent');
  }

  /** Runs a command inside a namespace and returns its output. */
  exec(netns: string, cmd: string, args: string[], options: RunOptions = {}) {
    try {
      requireProgram(cmd);
    } catch (err) {
      return Promise.reject(err);
    }
    return run('ip', ['netns', 'exec', netns, cmd, ...args], options);
  }

  /** Starts a long-running process inside a namespace; it is killed at cleanup. */
  spawn(netns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    requireProgram(cmd);
    // `ip netns exec` execs the command, so the child's PID is the command's own.
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Starts a Node.js script inside a namespace, with this process's loader flags (tsx). */
  spawnNode(netns: string, script: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    return this.spawn(netns, process.execPath, [...process.execArgv, script, ...args], options);
  }

  /** Kills what this lab started and deletes its namespaces (and with them every link in them). */
  async cleanup(): Promise<void> {
    await Promise.all([...this.children].map((child) => stopChild(child)));
    for (const ns of this.namespaces.splice(0)) {
      await killNamespaceProcesses(ns);
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
export function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function killNamespaceProcesses(ns: string): Promise<number> {
  const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
  const pids = stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids.length;
}

export interface CleanReport {
  namespaces: string[];
  links: string[];
  processes: number;
}

/** Removes every namespace and host link a tacmesh run left behind (names matching tm?????). */
export async function cleanLeftovers(pattern = PREFIX_PATTERN): Promise<CleanReport> {
  requireRoot();
  const report: CleanReport = { namespaces: [], links: [], processes: 0 };
  const { stdout: nsList } = await run('ip', ['-j', 'netns', 'list']);
  const namespaces = (JSON.parse(nsList || '[]') as { name: string }[]).map((n) => n.name);
  for (const ns of namespaces.filter((n) => pattern.test(n))) {
    report.processes += await killNamespaceProcesses(ns);
    await run('ip', ['netns', 'del', ns]);
    report.namespaces.push(ns);
  }
  const { stdout: linkList } = await run('ip', ['-j', 'link', 'show']);
  const links = (JSON.parse(linkList || '[]') as { ifname: string }[]).map((l) => l.ifname);
  for (const link of links.filter((l) => pattern.test(l))) {
    await run('ip', ['link', 'del', link]).catch(() => undefined); // a veth peer may already be gone
    report.links.push(link);
  }
  return report;
}
