/**
 * `tacmesh node run`: the node process. Either a plain monitor on named interfaces, or —
 * with a node config — the agent (slices, switches, repair) whose monitor watches the
 * slices' switch ports plus the interfaces the config names. Either way the records go to
 * the tower link; the tower's monitoring settings are applied live through the monitor's
 * maps; the agent's events and the node's status are reported.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type BpfTrust, SERIAL_FILE, withVerifiedObject } from '../pki/bpf-manifest.js';
import type { MonitorConfig__Output } from '../proto/index.js';
import { nodeLog as log } from '../shared/log.js';
import { Agent } from './agent/agent.js';
import { type NodeConfig, subnet } from './agent/config.js';
import { bridgeName } from './agent/desired.js';
import { IpfixExporter, teeSink } from './export/ipfix.js';
import { SeqAllocator } from './export/seq.js';
import { type HelloInfo, TowerLink, type TowerLinkOptions } from './export/tower-client.js';
import { addressOf } from './export/uplink.js';
import { NeighbourRelay } from './mesh/relay.js';
import { type MeshLink, MeshStage } from './mesh/stage.js';
import { type NodeSnapshot, nodeMetrics } from './metrics.js';
import { Monitor, type MonitorSink, resolveInterfaces } from './monitor/monitor.js';
import { QosStage } from './qos/stage.js';

export interface NodeRuntimeOptions {
  name?: string;
  /** Interfaces to watch (names or globs), besides the slices of `agent`. */
  interfaces: string[];
  netns?: string;
  stateDir: string;
  tower: Omit<TowerLinkOptions, 'node' | 'hello' | 'onMonitorConfig' | 'onQosPolicy' | 'spool' | 'relays'>;
  /** Most bytes the on-disk spool of unacknowledged records may hold (default 256 MiB). */
  spoolMaxBytes?: number;
  hello: HelloInfo;
  intervalMs?: number;
  /** Also export flows and HTTP lines over IPFIX to this collector. */
  ipfix?: { transport: 'udp' | 'tcp'; host: string; port: number };
  /** Serve Prometheus metrics (GET /metrics) on this address; off when unset. */
  metricsListen?: { host: string; port: number };
  /** Run the agent on this node config (slices, switches, repair) and monitor its slices. */
  agent?: { config: NodeConfig; file: string };
  /**
   * The signed manifest every eBPF object is checked against (default: the agent config's
   * bpf section). Without one the node refuses to load any: monitoring and QoS need it.
   */
  bpf?: NonNullable<NodeConfig['bpf']>;
}

const STATUS_EVERY_MS = 5000;

/** What a node config tells the tower of the node: its subnets (slices, radio link addresses), switches, position and services. */
export function helloOf(config: NodeConfig): HelloInfo {
  const slices = config.slices.map((s) => ({
    name: s.name,
    subnets: s.gateway ? [subnet(s.gateway)] : [],
    bridge: bridgeName(config.prefix, s.name),
  }));
  // The node's own addresses on its radio links: probes and routing between neighbours are
  // then traffic between nodes at the tower, not traffic to the outside.
  const links = config.uplinks.flatMap((u) => (u.mesh && u.address ? [`${u.address.split('/')[0]}/32`] : []));
  const services = config.slices.flatMap((s) =>
    s.members.flatMap((m) =>
      m.services.map((d) => ({
        name: d.name,
        precedence: d.precedence,
        slice: s.name,
        member: m.name,
        address: m.address.split('/')[0] as string,
        port: d.port,
        protocol: d.protocol,
      })),
    ),
  );
  return {
    subnets: [...slices.flatMap((s) => s.subnets), ...links],
    slices,
    position: config.position ?? null,
    services,
  };
}

export class NodeRuntime {
  private monitor: Monitor | undefined;
  private agent: Agent | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private mesh: MeshStage | undefined;
  private neighbourRelay: NeighbourRelay | undefined;
  private appliedVersion = 0;
  private qos: QosStage | undefined;
  private metrics: ReturnType<typeof nodeMetrics> | undefined;
  private readonly ipfix: IpfixExporter | undefined;
  /** Where the monitor's records go: the tower link, and the IPFIX exporter when set. */
  private readonly sink: MonitorSink;
  readonly link: TowerLink;
  readonly name: string;

  /** What eBPF objects are checked against; undefined when neither the options nor the config say. */
  private readonly bpf: BpfTrust | undefined;

  constructor(private readonly options: NodeRuntimeOptions) {
    this.name = options.agent?.config.node ?? options.name ?? hostname();
    const bpf = options.bpf ?? options.agent?.config.bpf;
    // The serial lives with the seqs: in the node's persistent state directory.
    this.bpf = bpf && { ...bpf, serialFile: join(options.stateDir, SERIAL_FILE) };
    const relay = options.agent?.config.mesh.relay;
    const neighbours = radioLinks(options.agent?.config).map((l) => l.mesh.neighbour);
    this.link = new TowerLink(
      {
        ...options.tower,
        ...(relay?.enabled && neighbours.length
          ? {
              relays: {
                port: relay.port,
                ackTimeoutMs: relay.ackTimeoutMs,
                neighbours: () => this.mesh?.neighbours() ?? neighbours,
              },
            }
          : {}),
        node: this.name,
        hello: () => options.hello,
        onMonitorConfig: (c) => this.applyMonitorConfig(c),
        onQosPolicy: (p) => {
          const netns = options.agent?.config.netns ?? options.netns;
          this.qos ??= new QosStage((m) => this.link.sendNow(m), {
            ...(netns ? { netns } : {}),
            ...(this.bpf ? { bpf: this.bpf } : {}),
          });
          void this.qos.apply(p);
        },
        spool: {
          dir: `${options.stateDir}/spool`,
          ...(options.spoolMaxBytes ? { maxBytes: options.spoolMaxBytes } : {}),
        },
      },
      new SeqAllocator(options.stateDir),
    );
    this.ipfix = options.ipfix ? new IpfixExporter(options.ipfix) : undefined;
    this.sink = this.ipfix ? teeSink(this.link, this.ipfix) : this.link;
  }

  async start(): Promise<void> {
    const { agent: withAgent } = this.options;
    if (withAgent) {
      const { bpf } = this.options;
      this.agent = new Agent(bpf ? { ...withAgent.config, bpf } : withAgent.config, {
        sink: this.sink,
        file: withAgent.file,
        stateDir: `${this.options.stateDir}/agent`,
        ...(this.bpf ? { bpfSerialFile: this.bpf.serialFile } : {}),
        onEvent: (e) =>
          this.link.sendSoon({
            event: {
              timeMs: e.time,
              entity: e.entity,
              problem: e.problem,
              action: e.action,
              ok: e.ok,
              cause: e.cause,
              error: e.error ?? '',
              tookMs: Math.round(e.tookMs),
            },
          }),
      });
      await this.agent.apply();
      await this.agent.start();
      this.monitor = this.agent.monitorStage;
      if (!this.monitor) throw new Error('the agent started no monitor');
      const extra = [...this.options.interfaces, ...withAgent.config.watch];
      const netns = withAgent.config.netns ?? this.options.netns;
      for (const iface of extra.length ? await resolveInterfaces(extra, netns) : [])
        this.monitor.addInterface(iface);
      await this.startMesh(withAgent.config);
    } else {
      if (!this.bpf) {
        throw new Error(
          'the node loads only signed eBPF objects: give --bpf-manifest and --bpf-trusted-key (or a config with a bpf section)',
        );
      }
      this.monitor = await withVerifiedObject('flowmon', this.bpf, (objectPath) =>
        Monitor.start(this.sink, {
          interfaces: this.options.interfaces,
          node: this.name,
          intervalMs: this.options.intervalMs ?? 1000,
          ...(this.options.netns ? { netns: this.options.netns } : {}),
          objectPath,
        }),
      );
    }
    await this.link.start();
    this.ipfix?.start();
    if (this.options.metricsListen) {
      this.metrics = nodeMetrics(this.name, () => this.snapshot());
      await this.metrics.listen(this.options.metricsListen);
    }
    this.statusTimer = setInterval(() => this.reportStatus(), STATUS_EVERY_MS);
    log.info({ node: this.name, interfaces: this.monitor.flowmon.interfaces }, 'node running');
  }

  /** What the metrics show, read at each scrape. */
  private snapshot(): NodeSnapshot {
    const { counters, spool } = this.link;
    // How old the newest data the tower acknowledged is; 0 when nothing waits.
    const since = spool.ackedTimeMs ?? spool.oldestUnackedMs;
    return {
      stats: this.link.lastStats,
      flowMapCapacity: this.monitor?.flowmon.obj.map('flowmon_flows').maxEntries ?? 0,
      flowRecords: counters.flowRecords,
      exportLagMs: spool.records === 0 || since === undefined ? 0 : Math.max(0, Date.now() - since),
      towerUp: this.link.connected,
      reconnects: Math.max(0, counters.connects - 1),
      batchesAcked: counters.batchesAcked,
      recordsResent: counters.recordsResent,
      spoolBytes: spool.bytes,
      spoolRecords: spool.records,
      spoolLost: spool.lost,
      ipfixRecords: this.ipfix?.counters.records,
      links: this.mesh?.last ?? [],
    };
  }

  /** Settings from the tower take effect on the next packet; the version is reported back. */
  private applyMonitorConfig(c: MonitorConfig__Output): void {
    if (!this.monitor || c.version === this.appliedVersion) return;
    const applied = this.monitor.configure({ l3: c.l3, l4: c.l4, l7: c.l7, sample: Math.max(1, c.sample) });
    if (c.intervalMs > 0) this.monitor.setInterval(c.intervalMs);
    this.appliedVersion = c.version;
    log.info({ version: c.version, ...applied, intervalMs: c.intervalMs }, 'monitoring settings applied');
    this.reportStatus();
  }

  private reportStatus(): void {
    if (!this.monitor) return;
    const settings = this.monitor.flowmon.settings();
    this.link.sendNow({
      status: {
        timeMs: Date.now(),
        interfaces: this.monitor.flowmon.interfaces.map((name) => ({ name, up: true, monitored: true })),
        slices: this.options.hello.slices,
        health: 'ok',
        monitorConfig: { ...settings, intervalMs: this.monitor.intervalMs, version: this.appliedVersion },
      },
    });
  }

  /**
   * The mesh stage on the config's radio links (uplinks with `mesh`), reporting through the
   * tower link; with mesh.relay on, the relay this node offers its neighbours.
   */
  private async startMesh(config: NodeConfig): Promise<void> {
    const links = radioLinks(config);
    if (!links.length) return;
    if (config.netns) {
      // Its sockets would live in this process's namespace, not the node's.
      log.warn(
        { netns: config.netns },
        'mesh: radio links are measured only by a node process inside their namespace',
      );
      return;
    }
    this.mesh = new MeshStage(config.mesh, links, {
      links: (reports, now) => this.link.linkReports(reports, now),
      routes: (report) => this.link.routeReport(report),
    });
    await this.mesh.start();
    if (config.mesh.relay.enabled) {
      const { mgmtAddr, mgmtIface } = this.options.tower;
      let localAddress = mgmtAddr;
      try {
        localAddress ??= mgmtIface ? addressOf(mgmtIface) : undefined;
      } catch (err) {
        log.warn({ err }, 'relay for neighbours: no management address');
      }
      this.neighbourRelay = new NeighbourRelay(links, {
        port: config.mesh.relay.port,
        tower: () => this.link.tower,
        ...(localAddress ? { localAddress } : {}),
      });
      await this.neighbourRelay.start();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.statusTimer);
    await this.neighbourRelay?.close();
    await this.mesh?.stop();
    await this.qos?.stop();
    this.metrics?.close();
    if (this.agent) await this.agent.stop();
    else this.monitor?.stop();
    await this.link.stop();
    this.ipfix?.stop();
  }
}

/** The config's radio links: uplinks with `mesh`. */
function radioLinks(config: NodeConfig | undefined): MeshLink[] {
  return (config?.uplinks ?? []).flatMap((u) =>
    u.mesh
      ? [{ iface: u.interface, address: u.address?.split('/')[0] ?? '', rateMbit: u.rateMbit, mesh: u.mesh }]
      : [],
  );
}
