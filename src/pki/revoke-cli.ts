import { Command } from 'commander';
import { revoke, revokedPath } from './revoked.js';

/** `tacmesh pki revoke <serial|cert file>`: onto the deny-list the tower re-reads. */
export function revokeCommand(): Command {
  return new Command('revoke')
    .description(
      'Revoke a certificate: add its serial to the deny-list the tower re-reads (no restart); the tower refuses it from then on',
    )
    .argument(
      '<serial|cert>',
      'the serial (hex, as `openssl x509 -serial` prints it) or the certificate file',
    )
    .option('--dir <dir>', 'the CA directory; the list is <dir>/revoked.txt', '/etc/tacmesh/pki')
    .option('--list <file>', "the deny-list file, if not <dir>/revoked.txt (the tower's pki.revoked)")
    .action((what: string, opts: { dir: string; list?: string }) => {
      const path = opts.list ?? revokedPath(opts.dir);
      const r = revoke(path, what);
      const who = r.name ? ` (${r.name})` : '';
      console.log(
        r.already
          ? `serial ${r.serial}${who} was already revoked in ${path}`
          : `revoked serial ${r.serial}${who} in ${path}`,
      );
    });
}
