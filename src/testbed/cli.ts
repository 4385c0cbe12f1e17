import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './demo.js';
import { cleanLeftovers } from './lab.js';

export function testbedCommand(): Command {
  const testbed = new Command('testbed').description(
    "Build the papers' experiments on this machine in network namespaces (needs root)",
  );
  testbed
    .command('clean')
    .description(
      'Remove namespaces, links and processes that earlier tacmesh runs left behind (names tm?????-*)',
    )
    .action(async () => {
      const report = await cleanLeftovers();
      console.log(
        `removed ${report.namespaces.length} namespaces, ${report.links.length} links, ${report.processes} processes`,
      );
      for (const ns of report.namespaces) console.log(`  netns ${ns}`);
      for (const link of report.links) console.log(`  link ${link}`);
    });
  return testbed;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'The main job: a node with a slice switch, containers and live HTTP traffic, watched by eBPF (needs root)',
    )
    .option('--duration <s>', 'stop after this many seconds (default: until Ctrl-C)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1)
        throw new InvalidArgumentError('duration must be a whole number >= 1');
      return n;
    })
    .option('--json', 'print records as JSON lines instead of the live view')
    .action(async (opts: { duration?: number; json?: boolean }) => {
      await runDemo(opts);
    });
}
