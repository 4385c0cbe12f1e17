/**
 * Config files of every component: YAML checked against a zod schema. An error names the
 * file, the field (its path) and the problem, one line each.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export class ConfigError extends Error {}

/** Reads and checks a config file; throws ConfigError naming the file, each bad field and why. */
export function loadConfig<S extends z.ZodType>(file: string, schema: S): z.infer<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  return parseConfig(file, text, schema);
}

export function parseConfig<S extends z.ZodType>(file: string, text: string, schema: S): z.infer<S> {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `${file}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new ConfigError(lines.join('\n'));
}

/**
 * Checks that the files a config names exist and can be read, before anything starts: an
 * error names the config file, the field and the missing file.
 */
export function requireFiles(file: string, fields: [field: string, path: string | undefined][]): void {
  const lines: string[] = [];
  for (const [field, path] of fields) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      lines.push(
        `${file}: ${field}: ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code})`}`,
      );
    }
  }
  if (lines.length) throw new ConfigError(lines.join('\n'));
}

/** A dotted-quad IPv4 address, as node.yaml and tower.yaml write them. */
export const ipv4Address = z
  .string()
  .refine((s) => ipaddr.IPv4.isValidFourPartDecimal(s), 'expected an IPv4 address');
