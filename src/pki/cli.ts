/**
 * `tacmesh pki`: the project's keys and signatures. One subcommand per function, each
 * built by its own function below and added in pkiCommand().
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { objectPath } from '../bpf/index.js';
import { generateSigningKey, keyId, readSigningKey, signManifest } from './bpf-manifest.js';
import { addCaCommands } from './ca-cli.js';
import { revokeCommand } from './revoke-cli.js';

export function pkiCommand(): Command {
  const pki = new Command('pki').description('Keys, certificates and signatures');
  addCaCommands(pki);
  pki.addCommand(revokeCommand());
  return pki.addCommand(signBpfCommand());
}

/** Where `make -C bpf` puts the objects. */
export function defaultObjectDir(): string {
  return dirname(objectPath('flowmon'));
}

interface SignBpfOptions {
  key: string;
  out?: string;
  newKey?: boolean;
  serial?: number;
}

function serialNumber(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('--serial must be a whole number >= 1');
  return n;
}

function signBpfCommand(): Command {
  return new Command('sign-bpf')
    .description("Sign the eBPF objects' SHA-256 (ed25519): nodes load only objects this manifest lists")
    .argument('[objects...]', 'object files (default: every *.bpf.o in bpf/.output)')
    .requiredOption('--key <file>', 'the ed25519 private key (PEM, mode 600); read from this file only')
    .option('--out <file>', 'where to write the manifest (default: manifest.json beside the objects)')
    .option(
      '--new-key',
      'first make a new key pair: <key> (mode 600) and <key>.pub, the public key nodes trust',
    )
    .option(
      '--serial <n>',
      "the manifest's serial (default: now, in seconds since the epoch); nodes refuse one older than they accepted",
      serialNumber,
    )
    .addHelpText(
      'after',
      `
Rotation: make a new key with --new-key, add its .pub to every node's bpf.trustedKeys next
to the old one, re-sign, then remove the old key from the nodes' trustedKeys.

Rollback: each node keeps the highest serial it accepted and refuses an older manifest.
A node trusts a public key file only if group and others cannot write it.`,
    )
    .action((objects: string[], options: SignBpfOptions) => {
      if (options.newKey) {
        if (existsSync(options.key)) throw new Error(`${options.key} exists; refusing to overwrite a key`);
        const pair = generateSigningKey();
        writeFileSync(options.key, pair.privatePem, { mode: 0o600, flag: 'wx' });
        writeFileSync(`${options.key}.pub`, pair.publicPem, { mode: 0o644 });
        console.log(`new key ${options.key} and public key ${options.key}.pub`);
      }
      const key = readSigningKey(options.key);
      const dir = defaultObjectDir();
      const paths = objects.length
        ? objects
        : readdirSync(dir)
            .filter((f) => f.endsWith('.bpf.o'))
            .sort()
            .map((f) => join(dir, f));
      if (paths.length === 0)
        throw new Error(`no eBPF objects in ${dir} (build them with \`npm run build:bpf\`)`);
      const out = options.out ?? join(dirname(paths[0]!), 'manifest.json');
      const signed = signManifest(paths, key, options.serial ? { serial: options.serial } : {});
      writeFileSync(out, `${JSON.stringify(signed, null, 2)}\n`);
      const { serial } = JSON.parse(signed.manifest) as { serial: number };
      console.log(`signed ${paths.length} objects with key ${keyId(key)} into ${out} (serial ${serial})`);
    });
}
