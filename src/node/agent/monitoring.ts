/**
 * The slices' monitoring: flowmon (through the monitor stage) on every switch port of a
 * monitored slice — a container's veth or a VM's tap, which its records name as such. The agent asks the kernel which programs sit on each port's tcx hooks
 * (BPF_PROG_QUERY) and puts flowmon back where it is gone — a port re-created, or the
 * program detached by hand (`bpftool link detach`).
 */
import { SysError } from '../../shared/errno.js';
import { libc, loadLibrary } from '../../shared/libc.js';
import { inNetns } from '../../shared/netns.js';
import { Monitor, type MonitorSink } from '../monitor/monitor.js';
import type { NodeConfig } from './config.js';
import type { MonitoredPort } from './desired.js';

const libbpf = loadLibrary('libbpf.so.1');
const progQuery = libbpf.func(
  'int bpf_prog_query(int target_fd, int type, uint32_t query_flags, _Out_ uint32_t *attach_flags, _Out_ uint32_t *prog_ids, _Inout_ uint32_t *prog_cnt)',
) as (
  target: number,
  type: number,
  flags: number,
  attachFlags: number[],
  ids: Uint32Array,
  cnt: number[],
) => number;

const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;
const ENOENT = 2;
const ENODEV = 19;

/** Program ids on an interface's tcx ingress and egress hooks; undefined when it has no such interface. */
export function tcxPrograms(
  iface: string,
  netns: string | undefined,
): { ingress: number[]; egress: number[] } | undefined {
  return inNetns(netns, () => {
    const ifindex = libc.ifNameToIndex(iface);
    if (!ifindex) return undefined;
    const query = (type: number): number[] => {
      const ids = new Uint32Array(64);
      const cnt = [ids.length];
      const rc = progQuery(ifindex, type, 0, [0], ids, cnt);
      if (rc === -ENOENT || rc === -ENODEV) return [];
      if (rc < 0) throw new SysError(`BPF_PROG_QUERY on ${iface}`, rc);
      return [...ids.subarray(0, cnt[0])];
    };
    return { ingress: query(BPF_TCX_INGRESS), egress: query(BPF_TCX_EGRESS) };
  });
}

export interface MonitorRepair {
  port: string;
  problem: string;
  action: string;
  ok: boolean;
  error?: string;
}

export interface SliceMonitorOptions {
  node: string;
  netns: string | undefined;
  settings: NodeConfig['monitoring'];
  /** The flowmon object to load: a copy verified against the signed manifest. */
  objectPath?: string;
}

export class SliceMonitor {
  private readonly watched = new Set<string>();

  private constructor(
    readonly monitor: Monitor,
    private readonly netns: string | undefined,
  ) {}

  static async start(sink: MonitorSink, options: SliceMonitorOptions): Promise<SliceMonitor> {
    const { intervalMs, ...settings } = options.settings;
    const monitor = await Monitor.start(sink, {
      interfaces: [],
      node: options.node,
      ...(options.netns ? { netns: options.netns } : {}),
      intervalMs,
      settings,
      ...(options.objectPath ? { objectPath: options.objectPath } : {}),
    });
    return new SliceMonitor(monitor, options.netns);
  }

  get ports(): string[] {
    return [...this.watched];
  }

  private ids(): { ingress: number; egress: number } {
    const obj = this.monitor.flowmon.obj;
    return { ingress: obj.program('flowmon_ingress').id, egress: obj.program('flowmon_egress').id };
  }

  /** Whether flowmon is on both hooks of a port; a port that does not exist is not attached. */
  attached(port: string): boolean {
    const progs = tcxPrograms(port, this.netns);
    if (!progs) return false;
    const ids = this.ids();
    return progs.ingress.includes(ids.ingress) && progs.egress.includes(ids.egress);
  }

  /**
   * Makes flowmon watch exactly `ports` (those that exist): attaches where it is missing or
   * was detached, detaches from ports no longer monitored. Returns what it did.
   */
  reconcile(ports: MonitoredPort[]): MonitorRepair[] {
    const done: MonitorRepair[] = [];
    const want = new Map(ports.map((p) => [p.port, p.kind]));
    for (const port of this.watched) {
      if (want.has(port)) continue;
      this.monitor.removeInterface(port);
      this.watched.delete(port);
      done.push({
        port,
        problem: 'not monitored in the config',
        action: `detach flowmon from ${port}`,
        ok: true,
      });
    }
    for (const [port, kind] of want) {
      if (this.watched.has(port) && this.attached(port)) continue;
      if (!tcxPrograms(port, this.netns)) continue; // the port itself is missing: the plan re-creates it first
      const problem = this.watched.has(port) ? 'flowmon detached' : 'not monitored yet';
      try {
        if (this.watched.has(port)) this.monitor.removeInterface(port);
        this.watched.delete(port);
        this.monitor.addInterface(port, kind);
        this.watched.add(port);
        done.push({ port, problem, action: `attach flowmon to ${port}`, ok: true });
      } catch (err) {
        done.push({
          port,
          problem,
          action: `attach flowmon to ${port}`,
          ok: false,
          error: (err as Error).message,
        });
      }
    }
    return done;
  }

  stop(): void {
    this.monitor.stop();
    this.watched.clear();
  }
}
