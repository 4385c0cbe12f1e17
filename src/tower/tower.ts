/**
 * `tacmesh tower`: the stages wired together. Control plane (gRPC, mTLS) → ingest (decode,
 * classify) → DuckDB store (and the InfluxDB sink, the one-way forward to headquarters) →
 * query API (HTTPS); with a bus, the control plane puts batches on NATS JetStream and the
 * bus's writer stores them (docs/bus.md). Maintenance (roll-ups, retention) runs every minute.
 */
import maxmind, { type CityResponse, type Reader } from 'maxmind';
import { pkiPaths } from '../pki/ca.js';
import { RevocationList, revokedPath } from '../pki/revoked.js';
import { loadConfig } from '../shared/config.js';
import { towerLog as log } from '../shared/log.js';
import { splitHostPort } from '../shared/relay.js';
import type { ForwardView } from './api/forward-types.js';
import { LiveFeed } from './api/live.js';
import { type ApiServer, buildApi, startApi } from './api/server.js';
import { Tokens } from './api/tokens.js';
import { BusAudit } from './bus/audit.js';
import { BusConnection } from './bus/connection.js';
import { LeaderLease } from './bus/lease.js';
import { BusPublisher } from './bus/publisher.js';
import type { BusHealthView } from './bus/report.js';
import { BusWriter } from './bus/writer.js';
import { DEFAULT_LIMITS, siteSchema, type TowerConfig } from './config.js';
import { ControlServer } from './control/server.js';
import { DiodeLinkWatch } from './forward/diode-link.js';
import { IpfixForward } from './forward/ipfix-forward.js';
import { type GeoLookup, LocalityMap } from './ingest/locality.js';
import { type Cidr, firstOverlap, parseCidr } from './ingest/prefix.js';
import { TowerMetrics } from './metrics.js';
import { QosService } from './qos/service.js';
import { Registry } from './registry.js';
import { ServiceQosCompiler } from './services/enforce.js';
import { INTENT_WINDOW_MS, intentOf } from './services/intent.js';
import { DEFAULT_HEALTH } from './services/model.js';
import { ServiceRegistry } from './services/registry.js';
import { DuckStore } from './store/duckdb.js';
import { InfluxSink } from './store/influx.js';

const MAINTAIN_EVERY_MS = 60_000;
const LATENCY_ROLL_UP_EVERY_MS = 5_000;

/** tower.yaml `nodes`: each name, with the subnets it may register (null: any not another's). */
function allowedNodesOf(nodes: NonNullable<TowerConfig['nodes']>): Map<string, Cidr[] | null> {
  const out = new Map<string, Cidr[] | null>();
  for (const n of nodes) {
    if (typeof n === 'string') out.set(n, null);
    else out.set(n.name, n.subnets ? n.subnets.map((c) => parseCidr(c)) : null);
  }
  const listed = [...out].flatMap(([node, cidrs]) => (cidrs ?? []).map((cidr) => ({ node, cidr })));
  for (const [node, cidrs] of out) {
    const clash = firstOverlap(
      cidrs ?? [],
      listed.filter((l) => l.node !== node),
    );
    if (clash)
      throw new Error(
        `tower.yaml: nodes: ${node}'s ${clash[0].text} overlaps ${clash[1].node}'s ${clash[1].cidr.text}`,
      );
  }
  return out;
}

/** The bus's parts in a tower that has one. */
export interface TowerBus {
  connection: BusConnection;
  publisher: BusPublisher;
  writer: BusWriter;
  lease: LeaderLease | undefined;
  audit: BusAudit;
}

export class Tower {
  private maintainTimer: NodeJS.Timeout | undefined;
  private latencyTimer: NodeJS.Timeout | undefined;
  private serviceQos: ServiceQosCompiler | undefined;

  private constructor(
    readonly store: DuckStore,
    readonly registry: Registry,
    readonly places: LocalityMap,
    readonly control: ControlServer,
    readonly api: ApiServer,
    readonly controlPort: number,
    readonly influx: InfluxSink | undefined,
    readonly live: LiveFeed,
    readonly metrics: TowerMetrics | undefined,
    readonly qos: QosService,
    readonly services: ServiceRegistry,
    readonly forward: { ipfix: IpfixForward; diode: DiodeLinkWatch | undefined } | undefined,
    readonly bus: TowerBus | undefined,
  ) {}

  static async start(config: TowerConfig): Promise<Tower> {
    const pki = pkiPaths(config.pki.dir);
    const tls = { caCert: pki.caCert, cert: pki.cert(config.pki.name), key: pki.key(config.pki.name) };
    const limits = config.limits ?? DEFAULT_LIMITS;
    const tokens = Tokens.load(config.tokens);
    const revoked = new RevocationList(config.pki.revoked ?? revokedPath(config.pki.dir));
    const allowedNodes = config.nodes ? allowedNodesOf(config.nodes) : null;
    let geo: GeoLookup | null = null;
    const site = config.site ? loadConfig(config.site, siteSchema) : undefined;
    if (site?.mmdb) {
      const reader: Reader<CityResponse> = await maxmind.open<CityResponse>(site.mmdb);
      geo = (ip) => {
        const loc = reader.get(ip)?.location;
        return loc ? { lat: loc.latitude, lon: loc.longitude } : null;
      };
    }
    const places = new LocalityMap(geo);
    for (const s of site?.subnets ?? []) places.addSite(s.cidr, { node: s.node });
    for (const p of site?.places ?? []) {
      places.addSite(p.cidr, {
        position: { lat: p.lat, lon: p.lon },
        ...(p.label ? { label: p.label } : {}),
      });
    }

    const store = await DuckStore.open(config.store.path, {
      ...config.store,
      seqGapsPerNode: limits.seqGapsPerNode,
    });
    let connection: BusConnection | undefined;
    let writer: BusWriter | undefined;
    let lease: LeaderLease | undefined;
    let audit: BusAudit | undefined;
    try {
      connection = config.bus ? await BusConnection.open(config.bus, tls) : undefined;
      if (connection && config.bus?.lease) {
        const { holder, ttlMs, advertise } = config.bus.lease;
        lease = await LeaderLease.start(connection, holder, ttlMs, advertise);
      }
      const held = lease;
      const standby = held
        ? () =>
            held.leads
              ? undefined
              : {
                  reason: `this tower is a standby: the leader is ${held.leader ?? 'not known yet'}`,
                  leader: held.leaderAddress ?? '',
                }
        : undefined;
      const publisher = connection ? new BusPublisher(connection) : undefined;
      const registry = new Registry(store, places, limits.subnetsPerNode);
      await registry.load();
      // With a bus, the QoS audit log (and so the policy in force) comes from it.
      audit = connection ? await BusAudit.start(connection, store) : undefined;
      const onBus = audit;
      const qos = new QosService(store, {
        ...(onBus ? { audit: (row) => onBus.append(row) } : {}),
        ...(standby ? { standby: () => standby()?.reason } : {}),
      });
      await qos.load();
      onBus?.follow((row) => qos.adopt(row));
      const services = new ServiceRegistry(config.services ?? []);
      const control = new ControlServer(registry, store, places, {
        allowedNodes,
        qos,
        limits,
        revoked,
        services,
        ...(publisher ? { publish: (b) => publisher.publish(b) } : {}),
        ...(standby ? { standby } : {}),
      });
      // A leader that lost the lease sends its nodes on to the new one.
      held?.onChange((leads) => {
        const s = standby?.();
        if (!leads && s) control.endStreams(s);
      });
      let influx: InfluxSink | undefined;
      if (config.influx) {
        influx = new InfluxSink({ url: config.influx.url, database: config.influx.database });
        await influx.start();
        const sink = influx;
        control.onBatch((b) => sink.write(b));
      }
      const live = new LiveFeed();
      control.onBatch((b) => live.add(b));
      // The QoS loop's `auto` links work from the mesh reports.
      control.onBatch((b) => {
        if (b.links.length)
          qos
            .linkReports(b.node, b.links)
            .catch((err: Error) => log.error({ err }, 'QoS: mesh reports not taken'));
      });
      let forward: { ipfix: IpfixForward; diode: DiodeLinkWatch | undefined } | undefined;
      if (config.forward) {
        const [host, port] = config.forward.ipfix.slice('udp://'.length).split(':');
        const ipfix = new IpfixForward({ host: host ?? '', port: Number(port) });
        ipfix.start();
        control.onBatch((b) => ipfix.batch(b));
        const diode = config.forward.diodeMetrics
          ? new DiodeLinkWatch(config.forward.diodeMetrics)
          : undefined;
        diode?.start();
        forward = { ipfix, diode };
      }
      const forwardView = (): ForwardView | null =>
        config.forward && forward
          ? {
              label: config.forward.label,
              ipfix: { collector: config.forward.ipfix, ...forward.ipfix.counters },
              diode: forward.diode?.view() ?? null,
            }
          : null;
      // The writer starts once every listener of stored batches is in place.
      if (connection)
        writer = await BusWriter.start(connection, async (b, brigade) => {
          if (brigade) await registry.brigadeNode(b.node);
          return control.commit(b);
        });
      const bus: TowerBus | undefined =
        connection && publisher && writer && audit
          ? { connection, publisher, writer, lease, audit }
          : undefined;
      const controlPort = await control.listen(config.control.listen, tls);
      let metrics: TowerMetrics | undefined;
      const app = buildApi({
        store,
        registry,
        places,
        tokens,
        health: () => ({
          control: control.counters,
          influx: influx ? { ...influx.counters, buffered: influx.buffered } : null,
          storedNodes: store.stored.size,
          live: { clients: live.clients, pushes: live.pushes },
          bus: bus
            ? ({
                ...bus.connection.health,
                ...bus.publisher.counters,
                writer: bus.writer.counters,
                audit: { stream: bus.audit.stream, ...bus.audit.counters },
                lease: bus.lease
                  ? {
                      holder: bus.lease.holder,
                      leader: bus.lease.leader,
                      leaderAddress: bus.lease.leaderAddress,
                      leads: bus.lease.leads,
                    }
                  : null,
              } satisfies BusHealthView)
            : null,
        }),
        live,
        qos,
        services: {
          registry: services,
          thresholds: config.serviceHealth ?? DEFAULT_HEALTH,
          intent: {
            of: (s, p95Ms) =>
              intentOf(s, p95Ms, {
                state: qos.services,
                applied: (node) => qos.nodes.get(node)?.applied ?? 0,
                rate: (node, iface, cls) => qos.classWindow(node, iface, cls, INTENT_WINDOW_MS),
              }),
            policy: () => qos.operatorPolicy,
          },
        },
        forward: forwardView,
        onRequest: (path, status, ms) => metrics?.request(path, status, ms),
        limits,
      });
      if (config.metrics) {
        metrics = new TowerMetrics(() => ({
          nodesConnected: [...registry.nodes.values()].filter((n) => n.connected).length,
          control: control.counters,
          influx: influx?.counters,
          liveClients: live.clients,
          bus: bus && {
            ...bus.connection.health,
            failures: bus.publisher.counters.failures,
            leads: bus.lease?.leads,
          },
        }));
        await metrics.listen(splitHostPort(config.metrics.listen));
      }
      const api = await startApi(app, splitHostPort(config.api.listen), tls);
      const tower = new Tower(
        store,
        registry,
        places,
        control,
        api,
        controlPort,
        influx,
        live,
        metrics,
        qos,
        services,
        forward,
        bus,
      );
      tower.maintainTimer = setInterval(() => {
        store.maintain().catch((err: Error) => log.error({ err }, 'store maintenance failed'));
      }, MAINTAIN_EVERY_MS);
      // QoS by service: the intents compiled onto the paths of the newest route reports.
      tower.serviceQos = new ServiceQosCompiler({
        db: store.reader,
        registry: services,
        qos,
        nodeOf: (address) => places.endpoint(address).node,
      });
      tower.serviceQos.start();
      tower.latencyTimer = setInterval(() => {
        store.rollUpLatency().catch((err: Error) => log.error({ err }, 'latency roll-up failed'));
      }, LATENCY_ROLL_UP_EVERY_MS);
      log.info(
        {
          control: `${config.control.listen} (port ${controlPort})`,
          api: `https port ${api.port}`,
          store: config.store.path,
          ...(bus ? { bus: bus.connection.stream } : {}),
        },
        'tower running',
      );
      return tower;
    } catch (err) {
      await writer?.stop();
      await audit?.stop();
      await lease?.stop();
      await connection?.close();
      store.close();
      throw err;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.maintainTimer);
    clearInterval(this.latencyTimer);
    this.serviceQos?.stop();
    this.control.forceClose();
    this.live.close();
    this.metrics?.close();
    await this.api.close();
    await this.influx?.stop();
    this.forward?.ipfix.stop();
    this.forward?.diode?.stop();
    await this.bus?.writer.stop();
    await this.bus?.audit.stop();
    await this.bus?.lease?.stop();
    await this.bus?.connection.close();
    this.store.close();
  }
}
