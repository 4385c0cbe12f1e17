/**
 * `tacmesh services`: the service registry from the command line, through the tower's API.
 * A file is checked here first (its fields, with the file and field named), then by the
 * tower (contradictions with the nodes' declarations), then applied.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { ConfigError, parseConfig } from '../../shared/config.js';
import { ApiClient, type ApiClientOptions, fileCommand, withApiOptions } from '../api/client.js';
import type { ServiceRow } from '../api/services-types.js';
import { ServiceSetSpec, type ServiceSpec } from './model.js';

const FileSchema = z.object({ services: ServiceSetSpec }).strict();

/** The services of a file, or a ConfigError naming the file, the field and the problem. */
export function readServicesFile(file: string): ServiceSpec[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  return parseConfig(file, text, FileSchema).services;
}

const ms = (v: number | null) => (v === null ? '-' : `${v}ms`);

/** The file's services once the file and then the tower found no problem in them. */
async function checked(
  opts: ApiClientOptions,
  file: string,
): Promise<{ client: ApiClient; services: ServiceSpec[] }> {
  const services = readServicesFile(file);
  const client = new ApiClient(opts);
  const answer = await client.call<{ ok: boolean; errors: string[] }>('POST', 'services/check', services);
  if (!answer.ok) throw new ConfigError(answer.errors.map((e) => `${file}: services: ${e}`).join('\n'));
  return { client, services };
}

export function servicesCommand(): Command {
  const cmd = new Command('services').description(
    'The service registry at the tower: list, get, check and apply service declarations (docs/services.md)',
  );
  withApiOptions(
    cmd
      .command('list')
      .description('Every service with its golden signals')
      .option('--last <span>', 'window', '5m'),
  ).action(async (opts: ApiClientOptions & { last: string }) => {
    const rows = await new ApiClient(opts).call<ServiceRow[]>(
      'GET',
      `services?last=${encodeURIComponent(opts.last)}`,
    );
    console.log(
      ['service', 'precedence', 'health', 'rps', 'err%', '4xx', '5xx', 'p50', 'p95', 'p99', 'net p95'].join(
        '\t',
      ),
    );
    for (const r of rows)
      console.log(
        [
          r.name,
          r.precedence,
          r.health,
          r.rps,
          r.errorPct,
          r.errors4xx,
          r.errors5xx,
          ms(r.p50Ms),
          ms(r.p95Ms),
          ms(r.p99Ms),
          ms(r.networkP95Ms),
        ].join('\t'),
      );
  });
  withApiOptions(
    cmd
      .command('get <name>')
      .description("One service's row, as JSON")
      .option('--last <span>', 'window', '5m'),
  ).action(async (name: string, opts: ApiClientOptions & { last: string }) => {
    const row = await new ApiClient(opts).call(
      'GET',
      `services/${encodeURIComponent(name)}?last=${encodeURIComponent(opts.last)}`,
    );
    console.log(JSON.stringify(row, null, 2));
  });
  fileCommand(
    cmd,
    'check',
    'Check a services file (YAML, `services:`) here and at the tower, change nothing',
  ).action(async (opts: ApiClientOptions & { file: string }) => {
    const { services } = await checked(opts, opts.file);
    console.error(`${opts.file}: ${services.length} services, no problem`);
  });
  fileCommand(cmd, 'apply', "Replace the tower's own declarations with a services file").action(
    async (opts: ApiClientOptions & { file: string }) => {
      const { client, services } = await checked(opts, opts.file);
      const answer = await client.call<{ services: string[] }>('PUT', 'services', services);
      console.error(
        `${opts.file}: applied; the registry holds ${answer.services.join(', ') || 'no service'}`,
      );
    },
  );
  return cmd;
}
