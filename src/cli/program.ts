/** The `tacmesh` command tree: one subcommand per component, each defined beside its component. */
import { Command } from 'commander';
import { diodeCommand } from '../diode/cli.js';
import { nodeCommand } from '../node/cli.js';
import { monitorCommand } from '../node/monitor/cli.js';
import { pkiCommand } from '../pki/cli.js';
import { demoCommand, testbedCommand } from '../testbed/cli.js';
import { towerCommand } from '../tower/cli.js';
import { qosCommand } from '../tower/qos/cli.js';
import { servicesCommand } from '../tower/services/cli.js';

export function buildProgram(): Command {
  return new Command('tacmesh')
    .description(
      'Tactical mesh network software: eBPF flow monitoring and QoS, control tower, reliable data diode',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(nodeCommand())
    .addCommand(towerCommand())
    .addCommand(servicesCommand())
    .addCommand(qosCommand())
    .addCommand(pkiCommand())
    .addCommand(monitorCommand())
    .addCommand(testbedCommand())
    .addCommand(demoCommand())
    .addCommand(diodeCommand());
}
