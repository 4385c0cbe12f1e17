import { fileURLToPath } from 'node:url';

/**
 * The path of the script `rel` from `base` (an import.meta.url), with the extension of the
 * running code (.ts under tsx in tests, .js from dist/).
 */
export function scriptPath(base: string, rel: string): string {
  const ext = base.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`${rel}${ext}`, base));
}

/** The path of a tool beside this file: `http` (serve, get, mix), `relay` or `probe`. */
export function toolPath(name: 'http' | 'relay' | 'probe'): string {
  return scriptPath(import.meta.url, `./${name}`);
}
