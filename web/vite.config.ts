/**
 * The dashboard's build: everything (ECharts, the world geometry) bundled into web/dist,
 * served by the tower at /. No CDN, no tiles: the page works with no internet.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The 1:10m world (only loaded when the map zooms in) is one big chunk by design.
    chunkSizeWarningLimit: 4096,
    sourcemap: false,
    // Rolldown's note on plugin timings is noise in scripts/setup.sh's output.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  json: { stringify: true },
  server: {
    // `npx vite web` during development: API calls go to a tower on 8443.
    proxy: { '/api': { target: 'https://127.0.0.1:8443', secure: false } },
  },
});
