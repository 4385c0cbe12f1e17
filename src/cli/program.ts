/** The `tacmesh` command tree: one subcommand per component, each defined beside its component. */
import { Command } from 'commander';

/**
 * Each component's command by its name, loaded on demand: all of them together take about a
 * second to load, which every `tacmesh diode …` or `tacmesh tower …` would otherwise pay.
 */
const components: [name: string, load: () => Promise<Command>][] = [
  ['node', async () => (await import('../node/cli.js')).nodeCommand()],
  ['tower', async () => (await import('../tower/cli.js')).towerCommand()],
  ['services', async () => (await import('../tower/services/cli.js')).servicesCommand()],
  ['qos', async () => (await import('../tower/qos/cli.js')).qosCommand()],
  ['pki', async () => (await import('../pki/cli.js')).pkiCommand()],
  ['monitor', async () => (await import('../node/monitor/cli.js')).monitorCommand()],
  ['testbed', async () => (await import('../testbed/cli.js')).testbedCommand()],
  ['demo', async () => (await import('../testbed/cli.js')).demoCommand()],
  ['diode', async () => (await import('../diode/cli.js')).diodeCommand()],
];

/**
 * The program for `argv` (node, script, arguments…): with only the command its first argument
 * names, or the whole tree when it names none (the top-level help, an unknown command).
 */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('tacmesh')
    .description(
      'Tactical mesh network software: eBPF flow monitoring and QoS, control tower, reliable data diode',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  const named = components.filter(([name]) => name === argv[2]);
  const commands = await Promise.all((named.length > 0 ? named : components).map(([, load]) => load()));
  for (const command of commands) program.addCommand(command);
  return program;
}
