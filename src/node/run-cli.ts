import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { pkiPaths } from '../pki/ca.js';
import { requireFiles } from '../shared/config.js';
import { requirePrograms } from '../shared/programs.js';
import { splitHostPort } from '../shared/relay.js';
import { loadNodeConfig, type NodeConfig } from './agent/config.js';
import { dropCapabilities } from './agent/hardening.js';
import { parseIpfixTarget } from './export/ipfix.js';
import { helloOf, NodeRuntime } from './runtime.js';

/** Where each node keeps its state (seqs, spool, the eBPF manifest serial): <root>/<name>. */
export const NODE_STATE_ROOT = '/var/lib/tacmesh';

function position(v: string): { lat: number; lon: number } {
  const [lat, lon] = v.split(',').map(Number);
  if (lat === undefined || lon === undefined || !(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) {
    throw new InvalidArgumentError('position must be "lat,lon" in degrees, e.g. 37.55,126.99');
  }
  return { lat, lon };
}

function mebibytes(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('--spool-max must be a positive number of MiB');
  return n;
}

function hostPort(v: string): { host: string; port: number } {
  try {
    return splitHostPort(v);
  } catch {
    throw new InvalidArgumentError(`"${v}" is not host:port, e.g. 127.0.0.1:9108`);
  }
}

interface RunOptions {
  config?: string;
  name?: string;
  iface: string[];
  tower?: string[];
  towerName?: string;
  pki?: string;
  cert?: string;
  key?: string;
  stateDir?: string;
  mgmtIface?: string;
  mgmtAddr?: string;
  subnet: string[];
  position?: { lat: number; lon: number };
  netns?: string;
  interval: number;
  keepCapabilities?: boolean;
  spoolMax: number;
  metricsListen?: { host: string; port: number };
  ipfix?: ReturnType<typeof parseIpfixTarget>;
  bpfManifest?: string;
  bpfTrustedKey?: string[];
  bpfObjectDir?: string;
}

/** The eBPF trust from the flags (each overrides the config's bpf section's field). */
function bpfOf(opts: RunOptions, config: NodeConfig | undefined): NodeConfig['bpf'] {
  const manifest = opts.bpfManifest ?? config?.bpf?.manifest;
  const trustedKeys = opts.bpfTrustedKey ?? config?.bpf?.trustedKeys;
  const objectDir = opts.bpfObjectDir ?? config?.bpf?.objectDir;
  if (!manifest && !trustedKeys) return undefined;
  if (!manifest || !trustedKeys?.length)
    throw new InvalidArgumentError('a signed eBPF manifest needs both --bpf-manifest and --bpf-trusted-key');
  return { manifest, trustedKeys, ...(objectDir ? { objectDir } : {}) };
}

/** `tacmesh node run`: agent and monitor → tower, live config from the tower. */
export function nodeRunCommand(): Command {
  return new Command('run')
    .description(
      'Run the node: with -c node.yaml the agent (slices, switches, repair) and the eBPF monitor on its slices; ' +
        'records streamed to the tower over mTLS',
    )
    .option(
      '-c, --config <node.yaml>',
      'the node config (docs/agent.md); its tower, management and position sections apply',
    )
    .option('--name <name>', "this node's name (default: the config's); its certificate must carry it")
    .option('-i, --iface <name...>', 'interfaces to watch besides the slices: names or glob patterns', [])
    .option(
      '--tower <host:port...>',
      "the tower's control plane; with a standby, every tower's (default: the config's tower.address)",
    )
    .option('--tower-name <name>', "the name in the tower's certificate (default tower)")
    .option(
      '--pki <dir>',
      "holds ca.crt, <name>.crt and <name>.key (default: the config's tower.pki, else /etc/tacmesh/pki)",
    )
    .option('--cert <file>', 'certificate (default <pki>/<name>.crt)')
    .option('--key <file>', 'private key, mode 600 (default <pki>/<name>.key)')
    .option(
      '--state-dir <dir>',
      'where the node keeps its sequence numbers, spool, eBPF manifest serial and agent state (default /var/lib/tacmesh/<name>)',
    )
    .option(
      '--mgmt-iface <name>',
      "send control traffic from this interface's address only (default: the config's management.interface)",
    )
    .option('--mgmt-addr <ip>', 'send control traffic from this address only')
    .option(
      '--subnet <cidr...>',
      'subnets whose addresses live on this node, besides its slices (for locality)',
      [],
    )
    .option('--position <lat,lon>', 'where this node is, for the map', position)
    .option('--netns <name>', 'watch interfaces of this network namespace')
    .option('--interval <ms>', 'export interval', (v) => Number(v), 1000)
    .option(
      '--spool-max <MiB>',
      'most disk the spool of records not yet acknowledged by the tower may use; beyond it the oldest go, counted',
      mebibytes,
      256,
    )
    .option(
      '--metrics-listen <host:port>',
      'serve Prometheus metrics at GET /metrics here, unauthenticated (off by default; e.g. 127.0.0.1:9108)',
      hostPort,
    )
    .option(
      '--ipfix <udp://host:port|tcp://host:port>',
      'also export flows and HTTP lines over IPFIX (RFC 7011) to this collector',
      (v) => {
        try {
          return parseIpfixTarget(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      },
    )
    .option('--bpf-manifest <file>', "the signed eBPF manifest (default: the config's bpf.manifest)")
    .option(
      '--bpf-trusted-key <pem...>',
      "public keys trusted to sign it, not writable by group or others (default: the config's bpf.trustedKeys)",
    )
    .option('--bpf-object-dir <dir>', 'where the eBPF objects are (default: the build output, bpf/.output)')
    .option('--keep-capabilities', 'do not drop capabilities after start (debugging only)')
    .action(async (opts: RunOptions) => {
      const config = opts.config ? loadNodeConfig(opts.config) : undefined;
      const name = opts.name ?? config?.node;
      const tower = opts.tower ?? config?.tower?.address;
      if (!name) throw new InvalidArgumentError('--name is needed (or a config with node:)');
      if (!tower) throw new InvalidArgumentError('--tower is needed (or a config with tower.address)');
      if (!config && opts.iface.length === 0)
        throw new InvalidArgumentError('nothing to watch: give -c node.yaml or --iface');
      requirePrograms(['ip'], 'the node');
      if (!opts.keepCapabilities) dropCapabilities();
      const pki = pkiPaths(opts.pki ?? config?.tower?.pki ?? '/etc/tacmesh/pki');
      // Missing certificates are named with where they came from: the config's field or the flag.
      const pkiFrom = opts.pki || !config?.tower?.pki ? '--pki' : 'tower.pki';
      const where = pkiFrom === 'tower.pki' ? (opts.config as string) : 'command line';
      requireFiles(where, [
        [pkiFrom, pki.caCert],
        [opts.cert ? '--cert' : pkiFrom, opts.cert ?? pki.cert(name)],
        [opts.key ? '--key' : pkiFrom, opts.key ?? pki.key(name)],
      ]);
      const bpf = bpfOf(opts, config);
      if (!bpf) {
        throw new InvalidArgumentError(
          'the node loads only signed eBPF objects: give --bpf-manifest and --bpf-trusted-key (or bpf: in node.yaml)',
        );
      }
      const hello = config ? helloOf(config) : { subnets: [], slices: [], position: null };
      hello.subnets.push(...opts.subnet);
      if (opts.position) hello.position = opts.position;
      const mgmtIface = opts.mgmtIface ?? config?.management?.interface;
      const runtime = new NodeRuntime({
        name,
        interfaces: opts.iface,
        stateDir: opts.stateDir ?? join(NODE_STATE_ROOT, name),
        bpf,
        intervalMs: opts.interval,
        spoolMaxBytes: opts.spoolMax * 1024 * 1024,
        ...(opts.metricsListen ? { metricsListen: opts.metricsListen } : {}),
        ...(opts.ipfix ? { ipfix: opts.ipfix } : {}),
        ...(opts.netns ? { netns: opts.netns } : {}),
        ...(config && opts.config ? { agent: { config, file: opts.config } } : {}),
        tower: {
          tower,
          towerName: opts.towerName ?? config?.tower?.name ?? 'tower',
          tls: { caCert: pki.caCert, cert: opts.cert ?? pki.cert(name), key: opts.key ?? pki.key(name) },
          ...(mgmtIface ? { mgmtIface } : {}),
          ...(opts.mgmtAddr ? { mgmtAddr: opts.mgmtAddr } : {}),
        },
        hello,
      });
      await runtime.start();
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await runtime.stop();
    });
}
