/**
 * Config files of every component: YAML checked against a zod schema. An error names the
 * file, the field (its path) and the problem, one line each.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

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
