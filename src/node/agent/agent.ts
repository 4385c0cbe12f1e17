/**
 * The node management agent: applies a node config (only what changed), keeps it true with
 * the reconcile loop, runs the slices' monitoring on verified eBPF objects, and removes
 * everything it made. Every change is an AgentEvent handed to `onEvent` — the node process
 * forwards them to the tower.
 *
 *   const agent = new Agent(config, { onEvent, sink });
 *   await agent.apply();   // the config, now
 *   await agent.start();   // monitoring + drift repair, until
 *   await agent.stop();    // (the network stays as configured) or agent.remove()
 */
import { join } from 'node:path';
import { type BpfTrust, SERIAL_FILE, withVerifiedObject } from '../../pki/bpf-manifest.js';
import { nodeLog as log } from '../../shared/log.js';
import { type Program, requirePrograms } from '../../shared/programs.js';
import type { MonitorSink } from '../monitor/monitor.js';
import type { NodeConfig } from './config.js';
import { type Desired, desiredState } from './desired.js';
import type { AgentEvent, AgentEventHandler } from './events.js';
import { Linux } from './linux.js';
import { SliceMonitor } from './monitoring.js';
import { emptyDesired, monitorEntity, plan } from './plan.js';
import { execute, observeNode, Reconciler } from './reconcile.js';
import { type AgentState, isAlive, StateStore } from './state.js';
import { type EntityStatus, nodeStatus } from './status.js';
import { requireVmSupport } from './vm.js';

/** What the agent runs to build and check the node's links, namespaces and queues. */
const AGENT_PROGRAMS: Program[] = ['ip', 'tc'];

export class ApplyRefused extends Error {
  override name = 'ApplyRefused';
}

export interface AgentOptions {
  /** Where the last applied config is kept (default /run/tacmesh/agent). */
  stateDir?: string;
  onEvent?: AgentEventHandler;
  /** Flow records and HTTP events of the monitored slices; without one, start() loads no eBPF. */
  sink?: MonitorSink;
  /** The file the config came from, kept in the state for `status`. */
  file?: string;
  /** A deep check every this many rounds (default 10). */
  deepEvery?: number;
  /**
   * Where the newest eBPF manifest serial accepted is kept (default: in stateDir); it must
   * outlive a reboot, or an older manifest could be put back after one.
   */
  bpfSerialFile?: string;
}

export class Agent {
  private desiredState: Desired;
  private readonly linux: Linux;
  private readonly store: StateStore;
  private reconciler: Reconciler | undefined;
  private monitor: SliceMonitor | undefined;

  constructor(
    private cfg: NodeConfig,
    private readonly options: AgentOptions = {},
  ) {
    requirePrograms(AGENT_PROGRAMS, 'the node agent');
    this.desiredState = desiredState(cfg);
    if (this.desiredState.slices.some((s) => s.members.some((m) => m.vm))) requireVmSupport();
    this.linux = new Linux(cfg.netns);
    this.store = new StateStore(options.stateDir);
  }

  get config(): NodeConfig {
    return this.cfg;
  }

  get desired(): Desired {
    return this.desiredState;
  }

  private emit(events: AgentEvent[]): void {
    for (const e of events) {
      if (!e.ok) log.warn({ ...e }, 'agent action failed');
      this.options.onEvent?.(e);
    }
  }

  /**
   * Makes the node match `config` (default: the one given to the constructor), changing only
   * what differs from it; what the previous config had and this one lacks is removed. Refused
   * before any change when the config names interfaces the node does not have.
   */
  async apply(config: NodeConfig = this.cfg): Promise<AgentEvent[]> {
    const started = performance.now();
    if (
      config.node !== this.cfg.node ||
      config.prefix !== this.cfg.prefix ||
      config.netns !== this.cfg.netns
    ) {
      throw new ApplyRefused(
        'node, prefix and netns cannot change while the agent runs: remove the node first',
      );
    }
    const previous = this.store.load(config.node)?.config;
    const prev = previous ? desiredState(previous) : undefined;
    const next = desiredState(config);
    await this.reconciler?.pause();
    try {
      const observed = await observeNode(next, true, prev);
      const actions = plan({ desired: next, observed, ...(prev ? { previous: prev } : {}) });
      const blocked = actions.filter((a) => a.op.op === 'none');
      if (blocked.length) {
        throw new ApplyRefused(
          `config not applied, nothing changed:\n${blocked.map((a) => `  ${a.entity}: ${a.problem}`).join('\n')}`,
        );
      }
      const events = await execute(this.linux, config.node, actions, 'apply', started);
      this.cfg = config;
      this.desiredState = next;
      this.reconciler?.setDesired(next);
      this.store.save({
        config,
        file: this.options.file ?? '(api)',
        appliedAt: new Date().toISOString(),
        ...(this.reconciler ? { pid: process.pid } : {}),
      });
      this.emit(events);
      if (this.monitor) this.emit(this.monitorRound('apply', started));
      return events;
    } finally {
      this.reconciler?.resume();
    }
  }

  private monitorRound(cause: AgentEvent['cause'], started: number): AgentEvent[] {
    if (!this.monitor) return [];
    return this.monitor.reconcile(this.desiredState.monitored).map((r) => ({
      time: Date.now(),
      node: this.cfg.node,
      entity: monitorEntity(this.desiredState, r.port),
      problem: r.problem,
      action: r.action,
      ok: r.ok,
      ...(r.error ? { error: r.error } : {}),
      cause,
      tookMs: Math.round(performance.now() - started),
    }));
  }

  /** What the agent trusts eBPF objects by; refused when the config has no bpf section. */
  bpfTrust(): BpfTrust {
    const bpf = this.cfg.bpf;
    if (!bpf) {
      throw new ApplyRefused(
        'monitoring needs bpf.manifest and bpf.trustedKeys in the config: the agent loads only signed eBPF objects',
      );
    }
    return { ...bpf, serialFile: this.options.bpfSerialFile ?? join(this.store.dir, SERIAL_FILE) };
  }

  /** Starts the slices' monitoring (with a sink) and the reconcile loop. */
  async start(): Promise<void> {
    if (this.reconciler) return;
    const started = performance.now();
    const { sink } = this.options;
    if (sink) {
      // flowmon, verified against the signed manifest; refused when it does not match.
      this.monitor = await withVerifiedObject('flowmon', this.bpfTrust(), (objectPath) =>
        SliceMonitor.start(sink, {
          node: this.cfg.node,
          netns: this.cfg.netns,
          settings: this.cfg.monitoring,
          objectPath,
        }),
      );
      this.emit(this.monitorRound('apply', started));
    }
    this.reconciler = new Reconciler(this.desiredState, this.linux, {
      intervalMs: this.cfg.checkIntervalMs,
      ...(this.options.deepEvery ? { deepEvery: this.options.deepEvery } : {}),
      onEvent: (e) => this.emit([e]),
      ...(this.monitor ? { monitor: this.monitor } : {}),
    });
    this.reconciler.start();
    const state = this.store.load(this.cfg.node);
    if (state) this.store.save({ ...state, pid: process.pid });
  }

  /** Stops repair and monitoring; what was configured stays as it is. */
  async stop(): Promise<void> {
    await this.reconciler?.stop();
    this.reconciler = undefined;
    this.monitor?.stop();
    this.monitor = undefined;
    const state = this.store.load(this.cfg.node);
    if (state?.pid === process.pid) {
      const { pid: _, ...rest } = state;
      this.store.save(rest);
    }
  }

  /** Stops, then takes away everything the agent made for this node. */
  async remove(): Promise<AgentEvent[]> {
    await this.stop();
    return removeNode(this.cfg, this.store, this.options.onEvent);
  }

  async status(): Promise<EntityStatus[]> {
    return nodeStatus(this.desiredState);
  }

  /** The monitor stage the agent runs, for live settings (undefined before start() or without a sink). */
  get monitorStage() {
    return this.monitor?.monitor;
  }
}

/**
 * Removes every namespace, link, qdisc, rule and route the agent made for `config`'s node,
 * and its state. An agent process still keeping the node is stopped first (SIGTERM).
 */
export async function removeNode(
  config: NodeConfig,
  store: StateStore,
  onEvent?: AgentEventHandler,
): Promise<AgentEvent[]> {
  requirePrograms(AGENT_PROGRAMS, 'the node agent');
  const started = performance.now();
  const state: AgentState | undefined = store.load(config.node);
  if (state?.pid && state.pid !== process.pid && isAlive(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(state.pid))
      throw new Error(`agent process ${state.pid} keeps node ${config.node} and did not stop`);
  }
  const previous = desiredState(config);
  const desired = emptyDesired(previous);
  const observed = await observeNode(previous, true, previous);
  const actions = plan({ desired, observed, previous });
  const events = await execute(new Linux(config.netns), config.node, actions, 'remove', started);
  for (const e of events) onEvent?.(e);
  const failed = events.filter((e) => !e.ok);
  if (failed.length) {
    throw new Error(
      `node ${config.node} not fully removed:\n${failed.map((e) => `  ${e.entity}: ${e.action}: ${e.error}`).join('\n')}`,
    );
  }
  store.delete(config.node);
  return events;
}
