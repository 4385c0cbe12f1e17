import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Hono } from 'hono';
import { StaticSite } from './static.js';

const dir = mkdtempSync('/tmp/tacmesh-static-');
after(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(`${dir}/assets`);
writeFileSync(
  `${dir}/index.html`,
  '<!doctype html><title>t</title><script src="/assets/app-1a2b.js"></script>',
);
const js = `console.log(${JSON.stringify('x'.repeat(5000))});`;
writeFileSync(`${dir}/assets/app-1a2b.js`, js);
writeFileSync(`${dir}/assets/app-1a2b.css`, 'body{}');

function app(root: string) {
  const site = new StaticSite(root);
  return new Hono().get('/*', (c) => site.serve(c));
}

test('content types, and caching: hashed assets immutable for a year, the page revalidated', async () => {
  const a = app(dir);
  const page = await a.request('/');
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  const asset = await a.request('/assets/app-1a2b.js');
  assert.equal(asset.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(await asset.text(), js);
  assert.equal(
    (await a.request('/assets/app-1a2b.css')).headers.get('content-type'),
    'text/css; charset=utf-8',
  );
});

test('gzip when asked, 304 on a matching ETag, page routes get index.html, missing assets 404', async () => {
  const a = app(dir);
  const gz = await a.request('/assets/app-1a2b.js', { headers: { 'accept-encoding': 'gzip, br' } });
  assert.equal(gz.headers.get('content-encoding'), 'gzip');
  assert.equal(gunzipSync(Buffer.from(await gz.arrayBuffer())).toString(), js);
  const etag = gz.headers.get('etag') ?? '';
  assert.ok(etag);
  assert.equal((await a.request('/assets/app-1a2b.js', { headers: { 'if-none-match': etag } })).status, 304);
  const route = await a.request('/nodes/whatever');
  assert.equal(route.status, 200);
  assert.match(await route.text(), /<title>t<\/title>/);
  assert.equal((await a.request('/assets/gone-0000.js')).status, 404);
});

test('a tower whose dashboard is not built says so, with a 503', async () => {
  const res = await app(`${dir}/nowhere`).request('/');
  assert.equal(res.status, 503);
  assert.match(await res.text(), /npm run build:web/);
});
