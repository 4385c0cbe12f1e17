/** `tacmesh node`: the WAN node. `run` streams telemetry to the tower; the agent's lifecycle commands sit beside it. */
import { Command } from 'commander';
import { nodeRunCommand } from './run-cli.js';

export function nodeCommand(): Command {
  return new Command('node')
    .description('The WAN node: eBPF monitoring, telemetry to the tower')
    .addCommand(nodeRunCommand());
}
