import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
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
    .addHelpText(
      'after',
      `
While it runs, stdin takes one command per line, applied at once with no reload:
  sample <N>             emit 1 HTTP event in N
  l3|l4|l7 on|off        switch a metric layer (l4 off: flows by address pair only)
  enable|disable <iface> pause or resume one interface

Counting rule: packets are wire packets (a GSO packet counts its segments); bytes are
skb->len at the tc hook, the Ethernet frame without FCS, as the interface counters
(ip -s link) count them. Needs root.`,
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
  const monitor = await Monitor.start(sink, {
    interfaces: opts.iface,
    intervalMs: opts.interval,
    idleTimeoutMs: opts.idleTimeout,
    settings: { sample: opts.sample, l7: opts.l7 === 'on' },
    ...(opts.netns ? { netns: opts.netns } : {}),
    ...(opts.node ? { node: opts.node } : {}),
    ...(opts.maxFlows ? { maxFlows: opts.maxFlows } : {}),
  });

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
