/**
 * `tacmesh node`: the WAN node. `run` streams telemetry to the tower (run-cli.ts); the agent's
 * lifecycle commands — apply a node config, show every entity's health, remove everything
 * the agent made — are here.
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { SERIAL_FILE } from '../pki/bpf-manifest.js';
import { Agent, removeNode } from './agent/agent.js';
import { loadNodeConfig, type NodeConfig } from './agent/config.js';
import { desiredState } from './agent/desired.js';
import type { AgentEvent } from './agent/events.js';
import { dropCapabilities } from './agent/hardening.js';
import { DEFAULT_STATE_DIR, StateStore } from './agent/state.js';
import { formatStatus, nodeStatus } from './agent/status.js';
import type { MonitorSink } from './monitor/monitor.js';
import { NODE_STATE_ROOT, nodeRunCommand } from './run-cli.js';

export function nodeCommand(): Command {
  return new Command('node')
    .description(
      'The WAN node: slices and their switches, self-repair, eBPF monitoring, telemetry to the tower',
    )
    .addCommand(nodeRunCommand())
    .addCommand(applyCommand())
    .addCommand(statusCommand())
    .addCommand(removeCommand());
}

export function formatEvent(e: AgentEvent): string {
  const mark = e.ok ? 'ok  ' : 'FAIL';
  return `${mark} ${e.entity}: ${e.problem} -> ${e.action}${e.error ? ` (${e.error})` : ''} [${e.tookMs} ms]`;
}

const print = (json: boolean | undefined) => (e: AgentEvent) =>
  console.log(json ? JSON.stringify({ type: 'event', ...e }) : formatEvent(e));

interface ApplyOptions {
  file: string;
  stateDir: string;
  watch?: boolean;
  json?: boolean;
  records?: boolean;
}

/** Monitor output of `apply --watch`: records on stdout with --records, else only counted. */
function watchSink(records: boolean): MonitorSink {
  const out = (type: string, data: object) => records && console.log(JSON.stringify({ type, ...data }));
  return {
    flows: (list) => {
      for (const f of list) out('flow', f);
    },
    http: (e) => out('http', e),
    stats: () => undefined,
  };
}

function applyCommand(): Command {
  return new Command('apply')
    .description('Create or update the node as node.yaml says, changing only what differs')
    .requiredOption('-f, --file <node.yaml>', 'the node config (docs/agent.md)')
    .option('--state-dir <dir>', 'where the applied config is kept', DEFAULT_STATE_DIR)
    .option('--watch', 'then keep running: monitoring on the slices and drift repair, until Ctrl-C / SIGTERM')
    .option('--records', 'with --watch: print flow records and HTTP events as JSON lines too')
    .option('--json', 'one JSON object per event')
    .action(async (options: ApplyOptions) => {
      // Validate before anything else, so a bad file leaves the running node untouched.
      const config = loadNodeConfig(options.file);
      if (options.watch) dropCapabilities();
      const agent = new Agent(config, {
        stateDir: options.stateDir,
        // The state directory is on /run (gone at reboot): the serial stays where `node run` keeps it.
        bpfSerialFile: join(NODE_STATE_ROOT, config.node, SERIAL_FILE),
        file: options.file,
        onEvent: print(options.json),
        ...(options.watch ? { sink: watchSink(options.records ?? false) } : {}),
      });
      const events = await agent.apply();
      if (!events.length && !options.json)
        console.log(`node ${config.node} already matches ${options.file}: nothing to do`);
      if (events.some((e) => !e.ok)) process.exitCode = 1;
      if (!options.watch) return;
      await agent.start();
      if (!options.json) console.log(`watching node ${config.node} (pid ${process.pid}); Ctrl-C stops`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await agent.stop();
    });
}

interface SelectOptions {
  file?: string;
  node?: string;
  stateDir: string;
  json?: boolean;
}

/** The node's config: from -f, or the one last applied (by --node when several). */
function selectConfig(options: SelectOptions): NodeConfig {
  if (options.file) return loadNodeConfig(options.file);
  return new StateStore(options.stateDir).pick(options.node).config;
}

function withSelection(cmd: Command): Command {
  return cmd
    .option('-f, --file <node.yaml>', 'the node config (default: the one last applied)')
    .option('--node <name>', 'which applied node, when several are kept in the state directory')
    .option('--state-dir <dir>', 'where the applied config is kept', DEFAULT_STATE_DIR)
    .option('--json', 'JSON output');
}

function statusCommand(): Command {
  return withSelection(new Command('status').description('Every entity of the node and its health')).action(
    async (options: SelectOptions) => {
      const status = await nodeStatus(desiredState(selectConfig(options)));
      console.log(options.json ? JSON.stringify(status, null, 2) : formatStatus(status));
      if (status.some((s) => !s.ok)) process.exitCode = 2;
    },
  );
}

function removeCommand(): Command {
  return withSelection(
    new Command('remove').description('Remove every namespace, link, qdisc, rule and route the agent made'),
  ).action(async (options: SelectOptions) => {
    const config = selectConfig(options);
    const events = await removeNode(config, new StateStore(options.stateDir), print(options.json));
    if (!options.json) console.log(`node ${config.node} removed (${events.length} actions)`);
  });
}
