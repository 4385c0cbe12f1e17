/**
 * The agent's memory between commands: the last applied config of each node (so `status`
 * and `remove` know what to look at, and `apply` what to take away) and the pid of the
 * agent process that keeps it, if one runs. One JSON file per node in the state directory;
 * /run is a tmpfs, gone at reboot, like the network state it describes.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { nodeLog as log } from '../../shared/log.js';
import { type NodeConfig, parseNodeConfig } from './config.js';

export const DEFAULT_STATE_DIR = '/run/tacmesh/agent';

export interface AgentState {
  config: NodeConfig;
  /** The file it came from. */
  file: string;
  appliedAt: string;
  /** The agent process keeping this node (apply --watch, node run), while it runs. */
  pid?: number;
}

export class StateStore {
  constructor(readonly dir = DEFAULT_STATE_DIR) {}

  private path(node: string): string {
    return join(this.dir, `${node}.json`);
  }

  save(state: AgentState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path(state.config.node), `${JSON.stringify(state, null, 2)}\n`);
  }

  /** The node's state; undefined when none is kept, or when the file is unreadable (logged). */
  load(node: string): AgentState | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(node), 'utf8');
    } catch {
      return undefined;
    }
    let raw: AgentState;
    try {
      raw = JSON.parse(text) as AgentState;
    } catch {
      // A power cut before this file was written durably: as if the node was never applied.
      log.warn({ file: this.path(node), bytes: text.length }, 'agent state unreadable: ignored');
      return undefined;
    }
    return { ...raw, config: parseNodeConfig(JSON.stringify(raw.config), `${this.path(node)} (config)`) };
  }

  nodes(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length));
    } catch {
      return [];
    }
  }

  /** The one node kept here, or the one named; a clear error otherwise. */
  pick(node?: string): AgentState {
    const nodes = this.nodes();
    const name = node ?? (nodes.length === 1 ? nodes[0] : undefined);
    if (!name) {
      throw new Error(
        nodes.length
          ? `${this.dir} keeps several nodes (${nodes.join(', ')}): name one with --node`
          : `no node applied (nothing in ${this.dir}); run \`tacmesh node apply -f node.yaml\` first`,
      );
    }
    const state = this.load(name);
    if (!state) throw new Error(`node ${name} was not applied here (nothing in ${this.dir})`);
    return state;
  }

  delete(node: string): void {
    rmSync(this.path(node), { force: true });
  }
}

export { isAlive } from '../../shared/proc.js';
