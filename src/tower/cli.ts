import { Command, Option } from 'commander';
import { pkiPaths } from '../pki/ca.js';
import { loadConfig, requireFiles } from '../shared/config.js';
import { ApiClient, type ApiClientOptions, withApiOptions } from './api/client.js';
import { createToken, type Role, revokeToken } from './api/tokens.js';
import { type BusHealthView, busReport } from './bus/report.js';
import { towerConfigSchema } from './config.js';
import { Tower } from './tower.js';

export function towerCommand(): Command {
  const tower = new Command('tower').description(
    'The control tower: mTLS control plane for the nodes, time-series store, query API and dashboard',
  );
  tower
    .command('run', { isDefault: true })
    .description('Run the tower until SIGINT/SIGTERM')
    .requiredOption('-c, --config <file>', 'tower.yaml (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      const config = loadConfig(opts.config, towerConfigSchema);
      const pki = pkiPaths(config.pki.dir);
      requireFiles(opts.config, [
        ['pki.dir', pki.caCert],
        ['pki.name', pki.cert(config.pki.name)],
        ['pki.name', pki.key(config.pki.name)],
        ['tokens', config.tokens],
        ['site', config.site],
      ]);
      const running = await Tower.start(config);
      console.error(
        `tacmesh tower: control plane on port ${running.controlPort}, API on https port ${running.api.port}`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await running.stop();
    });
  withApiOptions(
    tower
      .command('bus')
      .description(
        "The bus's health at a running tower (docs/bus.md): connected, the writer's lag and backlog, the replicas, the leader; exits 1 when not connected",
      ),
  ).action(async (opts: ApiClientOptions) => {
    const health = await new ApiClient(opts).call<{ bus: BusHealthView | null }>('GET', 'health');
    const report = busReport(health.bus, Date.now());
    for (const line of report.lines) console.log(line);
    if (!report.ok) process.exitCode = 1;
  });
  tower
    .command('token')
    .description('Create an API/dashboard token in the tokens file (printed once)')
    .requiredOption('--file <tokens.yaml>', 'the tokens file named in tower.yaml (created 0600)')
    .requiredOption('--name <name>', 'who holds it')
    .addOption(
      new Option('--role <role>', 'viewer reads; operator may also change settings')
        .choices(['viewer', 'operator'])
        .default('viewer'),
    )
    .option('--revoke', 'instead, remove the token of <name>: a running tower refuses it within a second')
    .action((opts: { file: string; name: string; role: Role; revoke?: boolean }) => {
      if (opts.revoke) {
        revokeToken(opts.file, opts.name);
        console.error(`token of ${opts.name} removed from ${opts.file}`);
      } else console.log(createToken(opts.file, opts.name, opts.role));
    });
  return tower;
}
