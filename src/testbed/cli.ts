import { Command } from 'commander';
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
