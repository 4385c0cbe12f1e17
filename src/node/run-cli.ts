import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { pkiPaths } from '../pki/ca.js';
import { NodeRuntime } from './runtime.js';

function position(v: string): { lat: number; lon: number } {
  const [lat, lon] = v.split(',').map(Number);
  if (lat === undefined || lon === undefined || !(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) {
    throw new InvalidArgumentError('position must be "lat,lon" in degrees, e.g. 37.55,126.99');
  }
  return { lat, lon };
}

interface RunOptions {
  name: string;
  iface: string[];
  tower: string;
  towerName: string;
  pki: string;
  cert?: string;
  key?: string;
  stateDir?: string;
  mgmtIface?: string;
  mgmtAddr?: string;
  subnet: string[];
  position?: { lat: number; lon: number };
  netns?: string;
  interval: number;
}

/** `tacmesh node run`: monitor → tower, live config from the tower. */
export function nodeRunCommand(): Command {
  return new Command('run')
    .description('Run the node: eBPF monitor on the interfaces, records streamed to the tower over mTLS')
    .requiredOption('--name <name>', "this node's name: its certificate must carry it")
    .requiredOption('-i, --iface <name...>', 'interfaces to watch: names or glob patterns')
    .requiredOption('--tower <host:port>', "the tower's control plane")
    .option('--tower-name <name>', "the name in the tower's certificate", 'tower')
    .option('--pki <dir>', 'holds ca.crt, <name>.crt and <name>.key', '/etc/tacmesh/pki')
    .option('--cert <file>', 'certificate (default <pki>/<name>.crt)')
    .option('--key <file>', 'private key, mode 600 (default <pki>/<name>.key)')
    .option(
      '--state-dir <dir>',
      'where the node keeps its sequence numbers (default /var/lib/tacmesh/<name>)',
    )
    .option('--mgmt-iface <name>', "send control traffic from this interface's address only")
    .option('--mgmt-addr <ip>', 'send control traffic from this address only')
    .option('--subnet <cidr...>', 'subnets whose addresses live on this node (for locality)', [])
    .option('--position <lat,lon>', 'where this node is, for the map', position)
    .option('--netns <name>', 'watch interfaces of this network namespace')
    .option('--interval <ms>', 'export interval', (v) => Number(v), 1000)
    .action(async (opts: RunOptions) => {
      const pki = pkiPaths(opts.pki);
      const runtime = new NodeRuntime({
        name: opts.name,
        interfaces: opts.iface,
        stateDir: opts.stateDir ?? join('/var/lib/tacmesh', opts.name),
        intervalMs: opts.interval,
        ...(opts.netns ? { netns: opts.netns } : {}),
        tower: {
          tower: opts.tower,
          towerName: opts.towerName,
          tls: {
            caCert: pki.caCert,
            cert: opts.cert ?? pki.cert(opts.name),
            key: opts.key ?? pki.key(opts.name),
          },
          ...(opts.mgmtIface ? { mgmtIface: opts.mgmtIface } : {}),
          ...(opts.mgmtAddr ? { mgmtAddr: opts.mgmtAddr } : {}),
        },
        hello: { subnets: opts.subnet, slices: [], position: opts.position ?? null },
      });
      await runtime.start();
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await runtime.stop();
    });
}
