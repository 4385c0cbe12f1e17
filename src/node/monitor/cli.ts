import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { objectPath } from '../../bpf/paths.js';
import { type BpfTrust, SERIAL_FILE, withVerifiedObject } from '../../pki/bpf-manifest.js';
import { nodeLog as log } from '../../shared/log.js';
import { parseControl } from './control.js';
import { Monitor, type MonitorSink } from './monitor.js';
import { TerminalView } from './view.js';

function positiveInt(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a whole number >= 1`);
    return n;
  };
}

export interface MonitorCliOptions {
  iface: string[];
  json?: boolean;
  duration?: number;
  interval: number;
  sample: number;
  l7: 'on' | 'off';
  netns?: string;
  node?: string;
  maxFlows?: number;
  idleTimeout: number;
  bpfManifest?: string;
  bpfTrustedKey?: string[];
  bpfObjectDir?: string;
  stateDir: string;
  unsigned?: boolean;
}

export const MONITOR_STATE_DIR = '/var/lib/tacmesh/monitor';

/**
 * How the monitor gets its flowmon object: checked against a signed manifest, or — with
 * --unsigned, on a developer's machine — the build output as it is, with a warning at every
 * start. Neither is an error: an unchecked object is never loaded silently.
 */
export function monitorObject(opts: MonitorCliOptions): BpfTrust | { unsigned: string } {
  if (opts.unsigned) {
    if (opts.bpfManifest || opts.bpfTrustedKey)
      throw new InvalidArgumentError('--unsigned and --bpf-manifest/--bpf-trusted-key exclude each other');
    return { unsigned: opts.bpfObjectDir ? join(opts.bpfObjectDir, 'flowmon.bpf.o') : objectPath('flowmon') };
  }
  if (!opts.bpfManifest || !opts.bpfTrustedKey?.length) {
    throw new InvalidArgumentError(
      'tacmesh monitor loads only signed eBPF objects: give --bpf-manifest and --bpf-trusted-key, ' +
        'or --unsigned to load the build output unchecked (a development machine only)',
    );
  }
  return {
    manifest: opts.bpfManifest,
    trustedKeys: opts.bpfTrustedKey,
    ...(opts.bpfObjectDir ? { objectDir: opts.bpfObjectDir } : {}),
    serialFile: join(opts.stateDir, SERIAL_FILE),
  };
}

export function monitorCommand(): Command {
  return new Command('monitor')
    .description('Watch interfaces with eBPF: flows (L3/L4) and HTTP requests and status codes (L7), live')
    .requiredOption('-i, --iface <name...>', 'interfaces to watch: names or glob patterns (veth*)')
    .option(
      '--json',
      'one JSON object per line with a "type" field (flow, http, stats) instead of the live view',
    )
    .option('--duration <s>', 'stop after this many seconds (default: until Ctrl-C)', positiveInt('duration'))
    .option(
      '--interval <ms>',
      'export interval: how often flow deltas are read',
      positiveInt('interval'),
      1000,
    )
    .option('--sample <N>', 'emit 1 HTTP event in N', positiveInt('sample'), 1)
    .addOption(new Option('--l7 <on|off>', 'HTTP request/status lines').choices(['on', 'off']).default('on'))
    .option('--netns <name>', 'the network namespace whose interfaces to watch (default: this one)')
    .option('--node <name>', 'node name in the records (default: host name)')
    .option(
      '--max-flows <n>',
      'flow table capacity; a full table is counted, never fatal',
      positiveInt('max-flows'),
    )
    .option('--idle-timeout <ms>', 'forget flows idle this long', positiveInt('idle-timeout'), 30_000)
    .option(
      '--bpf-manifest <file>',
      'the signed eBPF manifest (`tacmesh pki sign-bpf`) flowmon is checked against',
    )
    .option('--bpf-trusted-key <pem...>', 'public keys trusted to sign it, not writable by group or others')
    .option('--bpf-object-dir <dir>', 'where flowmon.bpf.o is (default: the build output, bpf/.output)')
    .option(
      '--state-dir <dir>',
      'where the newest manifest serial accepted is kept (an older manifest is refused)',
      MONITOR_STATE_DIR,
    )
    .option('--unsigned', 'load flowmon.bpf.o without a manifest (development only; warned at every start)')
    .addHelpText(
      'after',
      `
While it runs, stdin takes one command per line, applied at once with no reload:
  sample <N>             emit 1 HTTP event in N
  l3|l4|l7 on|off        switch a metric layer (l4 off: flows by address pair only)
  enable|disable <iface> pause or resume one interface

Counting rule: packets are wire packets (a GSO packet counts its segments); bytes are
skb->len at the tc hook, the Ethernet frame without FCS, as the interface counters
(ip -s link) count them. Needs root.

eBPF objects: flowmon.bpf.o is loaded only if the signed manifest lists it (its SHA-256, a
serial not older than the last one accepted here, a trusted key). On a development machine,
--unsigned loads the build output unchecked and says so on stderr.`,
    )
    .action(async (opts: MonitorCliOptions) => {
      await runMonitor(opts);
    });
}

export async function runMonitor(opts: MonitorCliOptions): Promise<void> {
  const view = opts.json ? undefined : new TerminalView(opts.interval);
  const emit = (type: string, body: object) => process.stdout.write(`${JSON.stringify({ type, ...body })}\n`);
  const sink: MonitorSink = view
    ? { flows: (r) => view.onFlows(r), http: (e) => view.onHttp(e), stats: (s) => view.render(s) }
    : {
        flows: (records) => {
          for (const r of records) emit('flow', r);
        },
        http: (e) => emit('http', e),
        stats: (s) => emit('stats', s),
      };
  const object = monitorObject(opts);
  const start = (objectPath: string) =>
    Monitor.start(sink, {
      interfaces: opts.iface,
      intervalMs: opts.interval,
      idleTimeoutMs: opts.idleTimeout,
      settings: { sample: opts.sample, l7: opts.l7 === 'on' },
      ...(opts.netns ? { netns: opts.netns } : {}),
      ...(opts.node ? { node: opts.node } : {}),
      ...(opts.maxFlows ? { maxFlows: opts.maxFlows } : {}),
      objectPath,
    });
  let monitor: Monitor;
  if ('unsigned' in object) {
    log.warn(
      { object: object.unsigned },
      'loading an UNSIGNED eBPF object (--unsigned): not checked against any manifest',
    );
    monitor = await start(object.unsigned);
  } else {
    monitor = await withVerifiedObject('flowmon', object, start);
  }

  const control = createInterface({ input: process.stdin });
  control.on('line', (line) => {
    if (!line.trim()) return;
    try {
      const cmd = parseControl(line);
      if (cmd.kind === 'settings') {
        const now = monitor.configure(cmd.settings);
        if (opts.json) emit('control', { applied: line.trim(), settings: now });
      } else {
        monitor.flowmon.setInterfaceEnabled(cmd.iface, cmd.enabled);
        if (opts.json) emit('control', { applied: line.trim() });
      }
    } catch (err) {
      process.stderr.write(`tacmesh monitor: ${(err as Error).message}\n`);
    }
  });

  await new Promise<void>((resolve) => {
    const finish = () => resolve();
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (opts.duration) setTimeout(finish, opts.duration * 1000);
  });
  control.close();
  monitor.stop();
  process.stdin.unref?.();
}
