/**
 * Worker threads on a module of the product: from dist/ the module is plain JavaScript; from
 * the sources (tests, benchmarks, under tsx) the worker registers tsx before it imports it.
 * A caller names its worker as `new URL(\`./x-worker${ext}\`, import.meta.url)`.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The extension of the product's modules here: `.ts` under tsx, `.js` in dist/. */
export const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (ext === '.js') return new Worker(url, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(code, { ...options, eval: true });
}
