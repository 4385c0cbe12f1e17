/**
 * `tacmesh qos`: the QoS policy from the command line, through the tower's API. A policy
 * file (YAML) is checked here — its fields, then the rules validate.ts applies — with every
 * problem named after the file, then set (operator role).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../shared/config.js';
import { ApiClient, type ApiClientOptions, fileCommand, withApiOptions } from '../api/client.js';
import type { QosPolicySpec } from './model.js';
import { validatePolicy } from './validate.js';

/** The policy of a file, or a ConfigError naming the file and every field's problem. */
export function readPolicyFile(file: string): QosPolicySpec {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  const v = validatePolicy(data ?? {});
  if (!v.ok) throw new ConfigError(v.errors.map((e) => `${file}: ${e}`).join('\n'));
  return data as QosPolicySpec;
}

interface PolicyView extends QosPolicySpec {
  version: number;
  nodes: Record<string, { connected: boolean; applied: number; refused: string | null }>;
}

export function qosCommand(): Command {
  const cmd = new Command('qos').description(
    'The QoS policy at the tower: list, get, check and apply (docs/qos.md)',
  );
  withApiOptions(
    cmd.command('list').description("The classes and rules in force, and each node's state"),
  ).action(async (opts: ApiClientOptions) => {
    const p = await new ApiClient(opts).call<PolicyView>('GET', 'qos');
    console.log(`policy version ${p.version}`);
    for (const c of p.classes)
      console.log(
        `class ${c.name}\tpriority ${c.priority}\tguaranteed ${c.guaranteedBps} bit/s\tceiling ${c.ceilingBps || 'link'}\tdscp ${c.dscp}`,
      );
    for (const r of p.rules) console.log(`rule ${r.name}\t→ ${r.class}`);
    for (const [name, n] of Object.entries(p.nodes))
      console.log(
        `node ${name}\t${n.connected ? 'connected' : 'away'}\tapplied v${n.applied}${n.refused ? `\trefused: ${n.refused}` : ''}`,
      );
  });
  withApiOptions(cmd.command('get').description('The policy in force, as JSON')).action(
    async (opts: ApiClientOptions) => {
      console.log(JSON.stringify(await new ApiClient(opts).call('GET', 'qos'), null, 2));
    },
  );
  fileCommand(cmd, 'check', 'Check a policy file (YAML), here and at the tower; change nothing').action(
    async (opts: ApiClientOptions & { file: string }) => {
      const policy = readPolicyFile(opts.file);
      const v = await new ApiClient(opts).call<{ ok: boolean; errors: string[] }>(
        'POST',
        'qos/validate',
        policy,
      );
      if (!v.ok) throw new ConfigError(v.errors.map((e) => `${opts.file}: ${e}`).join('\n'));
      console.error(`${opts.file}: no problem`);
    },
  );
  fileCommand(cmd, 'apply', 'Set the policy of a file (operator); answers once the nodes run it').action(
    async (opts: ApiClientOptions & { file: string }) => {
      const policy = readPolicyFile(opts.file);
      const answer = await new ApiClient(opts).call<{ version: number; settled: boolean }>(
        'PUT',
        'qos',
        policy,
      );
      console.error(
        `${opts.file}: policy version ${answer.version} set${answer.settled ? ', running on the connected nodes' : ''}`,
      );
    },
  );
  return cmd;
}
