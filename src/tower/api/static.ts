/**
 * The built dashboard (web/dist) served at / by the API's HTTPS server. Files are read once
 * and kept in memory with their gzip form. Vite's hashed assets are cached for a year;
 * index.html is revalidated every time (ETag), so a new build is picked up at once. Any
 * path that is not a file gets index.html (the page routes itself).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context } from 'hono';

export const WEB_DIST = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.json', '.svg', '.map', '.txt']);

interface StaticFile {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
  etag: string;
  cache: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export class StaticSite {
  private readonly files = new Map<string, StaticFile>();

  constructor(readonly root = WEB_DIST) {
    if (!existsSync(join(root, 'index.html'))) return;
    for (const path of walk(root)) {
      const url = `/${relative(root, path).split('\\').join('/')}`;
      const body = readFileSync(path);
      const ext = extname(path);
      this.files.set(url, {
        body,
        gzip: COMPRESSIBLE.has(ext) && body.length > 1024 ? gzipSync(body) : null,
        type: TYPES[ext] ?? 'application/octet-stream',
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        cache: url.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
    }
  }

  get built(): boolean {
    return this.files.has('/index.html');
  }

  serve(c: Context): Response {
    if (!this.built) {
      return c.text(
        `The dashboard is not built: run \`npm run build:web\` (or scripts/setup.sh), then restart the tower.\nThe API is at /api/v1/.\n`,
        503,
      );
    }
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    // Unknown asset paths are 404s; any other path is a page route: index.html.
    const file =
      this.files.get(path) ?? (path.startsWith('/assets/') ? undefined : this.files.get('/index.html'));
    if (!file) return c.text('not found\n', 404);
    const headers: Record<string, string> = {
      'content-type': file.type,
      'cache-control': file.cache,
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      vary: 'accept-encoding',
    };
    if (file.type.startsWith('text/html')) {
      headers['content-security-policy'] =
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";
      headers['referrer-policy'] = 'no-referrer';
    }
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, headers);
    if (file.gzip && /\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) {
      headers['content-encoding'] = 'gzip';
      return c.body(new Uint8Array(file.gzip), 200, headers);
    }
    return c.body(new Uint8Array(file.body), 200, headers);
  }
}
