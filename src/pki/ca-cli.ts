import { type Command, InvalidArgumentError } from 'commander';
import { initCa, issue, type Role } from './ca.js';

function days(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('days must be a whole number >= 1');
  return n;
}

/** `tacmesh pki init` and `tacmesh pki issue tower|node <name>`. */
export function addCaCommands(pki: Command): Command {
  pki
    .command('init')
    .description('Create the certificate authority of this network (ca.crt, ca.key) in a directory')
    .option('--dir <dir>', 'where the CA and the certificates live', '/etc/tacmesh/pki')
    .option('--days <n>', 'validity of the CA certificate', days, 3650)
    .action(async (opts: { dir: string; days: number }) => {
      const paths = await initCa(opts.dir, { days: opts.days });
      console.log(`CA created: ${paths.caCert} (key ${paths.caKey}, mode 600)`);
    });
  pki
    .command('issue')
    .description('Issue a key and certificate for the tower or for a node, signed by the CA')
    .argument('<role>', 'tower or node')
    .argument('<name>', "the identity: the node's name (it must say hello with it), or the tower's")
    .option(
      '--dir <dir>',
      'the CA directory (from pki init); the files are written there',
      '/etc/tacmesh/pki',
    )
    .option('--days <n>', 'validity', days, 825)
    .option('--alt <name...>', "extra DNS names or IP addresses the tower's certificate is valid for")
    .action(async (role: string, name: string, opts: { dir: string; days: number; alt?: string[] }) => {
      if (role !== 'tower' && role !== 'node')
        throw new InvalidArgumentError(`role must be tower or node, not "${role}"`);
      const paths = await issue(opts.dir, role as Role, name, { days: opts.days, altNames: opts.alt ?? [] });
      console.log(`${role} ${name}: ${paths.cert(name)} (key ${paths.key(name)}, mode 600)`);
    });
  return pki;
}
