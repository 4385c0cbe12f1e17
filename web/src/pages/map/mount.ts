/**
 * Map: where the nodes are and where both ends of each conversation are, on offline
 * outlines; a line per pair of places, as thick as the pair is frequent and coloured by
 * locality; hovering a line shows its address pairs and counts. The view fits the nodes and
 * endpoints (they may be a few kilometres apart) and can be zoomed and dragged.
 */
import type { EChartsType } from 'echarts/core';
import { registerMap } from 'echarts/core';
import { api, type MapData } from '../../api.js';
import { chart, dispose, TOOLTIP } from '../../charts.js';
import { empty, fill, h } from '../../dom.js';
import * as fmt from '../../format.js';
import { distanceKm, fitBox, graticule, worldFor } from '../../geo.js';
import type { PageContext } from '../../main.js';
import { refresher } from '../../refresh.js';
import { state } from '../../state.js';
import { type Link, layout, type Marker, mainLocality } from './layout.js';
import { geoOption, mapSeries, type View } from './series.js';

const km = (v: number) => (v < 10 ? v.toFixed(1) : String(Math.round(v)));

/** The width of what is on screen now, and the grid step, in km. */
function scaleNote(c: EChartsType, grid: { stepDeg: number; stepKm: number }): string {
  const w = c.getWidth();
  const hgt = c.getHeight() / 2;
  const a = c.convertFromPixel('geo', [0, hgt]) as number[] | undefined;
  const b = c.convertFromPixel('geo', [w, hgt]) as number[] | undefined;
  const width =
    a && b && Number.isFinite(a[0]) && Number.isFinite(b[0])
      ? `view ≈ ${km(distanceKm({ lon: a[0] ?? 0, lat: a[1] ?? 0 }, { lon: b[0] ?? 0, lat: b[1] ?? 0 }))} km wide · `
      : '';
  return `${width}grid ${grid.stepDeg}° (${km(grid.stepKm)} km N–S)`;
}

export function mountMap(ctx: PageContext): () => void {
  const chartEl = h('div', { class: 'map-chart', id: 'map-chart' });
  const side = h('aside', { class: 'map-side', id: 'map-side' });
  const note = h('span', { class: 'muted', id: 'map-note' });
  const error = h('div', { class: 'error-bar', hidden: true });
  let fitted = '';
  let c: EChartsType | undefined;
  let view: View = [-170, -60, 190, 80];
  const fitButton = h('button', { type: 'button', class: 'ghost', id: 'map-fit' }, 'fit to nodes');
  let last: MapData | undefined;
  fill(
    ctx.root,
    error,
    h(
      'div',
      { class: 'map-page' },
      h(
        'section',
        { class: 'card map-card' },
        h('h2', {}, 'Nodes and conversation ends', note, fitButton),
        chartEl,
      ),
      side,
    ),
  );

  let mapName = '';
  let alive = true;
  const draw = async (data: MapData) => {
    const { markers, links, unplaced } = layout(data);
    if (!markers.length) {
      ctx.root.dataset.markers = '[]';
      dispose('map');
      c = undefined;
      fill(
        chartEl,
        empty(
          'Nothing to place on the map',
          data.nodes.length
            ? 'No node or endpoint has a position: start nodes with --position lat,lon, or give CIDRs a place in the site file.'
            : 'No node has connected to this tower yet.',
        ),
      );
      renderSide(side, markers, links, unplaced);
      return;
    }
    const positionsKey = markers
      .map((m) => m.key)
      .sort()
      .join(';');
    const refit = fitted !== positionsKey;
    if (refit) {
      view = fitBox(markers.map((m) => m.position));
      fitted = positionsKey;
      const { geo, detailed } = await worldFor(view);
      if (!alive) return; // the page was left while the outlines loaded
      mapName = `world-${detailed.length ? detailed.sort().join(',') : 'coarse'}`;
      registerMap(mapName, geo as Parameters<typeof registerMap>[1]);
    }
    if (!c || c.isDisposed()) {
      chartEl.replaceChildren();
      const created = chart('map', chartEl);
      c = created;
      created.on('georoam', () => {
        note.textContent = scaleNote(created, graticule(view));
      });
    }
    const grid = graticule(view);
    c.setOption(
      {
        geo: geoOption(mapName, view, refit),
        tooltip: { ...TOOLTIP, trigger: 'item', confine: true },
        series: mapSeries(markers, links, grid),
      },
      // A new fit starts a fresh view (no zoom or drag left from before); otherwise keep the operator's view.
      refit ? { notMerge: true } : { replaceMerge: ['series'] },
    );
    note.textContent = scaleNote(c, grid);
    renderSide(side, markers, links, unplaced);
    ctx.root.dataset.markers = JSON.stringify(
      markers.map((m) => ({ name: m.name, kind: m.kind, ...m.position })),
    );
  };

  const stopRefresh = refresher(
    async () => {
      const data = await api<MapData>(`map${state.params()}`);
      last = data;
      error.hidden = true;
      await draw(data);
    },
    {
      everyMs: 2000,
      onError: (err) => {
        error.hidden = false;
        error.textContent = `The tower did not answer: ${err.message}`;
      },
    },
  );
  fitButton.onclick = () => {
    fitted = '';
    if (last) void draw(last);
  };
  return () => {
    alive = false;
    stopRefresh();
  };
}

/** The side panel: places by kind and conversations, the busiest links, what has no position. */
function renderSide(side: HTMLElement, markers: Marker[], links: Link[], unplaced: string[]): void {
  const sorted = [...links].sort((a, b) => b.conversations - a.conversations);
  fill(
    side,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Places', h('span', { class: 'muted' }, `${markers.length}`)),
      markers.length
        ? h(
            'table',
            { class: 'grid', id: 'map-places' },
            h(
              'thead',
              {},
              h('tr', {}, h('th', {}, 'place'), h('th', {}, 'lat, lon'), h('th', { class: 'num' }, 'conv.')),
            ),
            h(
              'tbody',
              {},
              markers
                .sort((a, b) =>
                  a.kind === b.kind ? b.conversations - a.conversations : a.kind === 'node' ? -1 : 1,
                )
                .map((m) =>
                  h(
                    'tr',
                    { 'data-name': m.name, 'data-kind': m.kind },
                    h('td', {}, h('span', { class: `glyph ${m.kind}` }), m.name),
                    h(
                      'td',
                      { class: 'mono muted' },
                      `${m.position.lat.toFixed(3)}, ${m.position.lon.toFixed(3)}`,
                    ),
                    h('td', { class: 'num' }, fmt.count(m.conversations)),
                  ),
                ),
            ),
          )
        : empty('No places', 'Nothing with a known position in this window.'),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Links', h('span', { class: 'muted' }, 'by conversations')),
      sorted.length
        ? h(
            'table',
            { class: 'grid', id: 'map-links' },
            h(
              'tbody',
              {},
              sorted
                .slice(0, 15)
                .map((l) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, h('span', { class: `badge ${mainLocality(l)}` }, mainLocality(l))),
                    h('td', {}, `${l.a.name} ↔ ${l.b.name}`),
                    h('td', { class: 'num' }, fmt.count(l.conversations)),
                    h(
                      'td',
                      { class: 'num muted' },
                      `${distanceKm(l.a.position, l.b.position).toFixed(1)} km`,
                    ),
                  ),
                ),
            ),
          )
        : empty('No links', 'No conversation joined two different places in this window.'),
    ),
    unplaced.length
      ? h(
          'section',
          { class: 'card' },
          h('h2', {}, 'Without a position', h('span', { class: 'muted' }, `${unplaced.length}`)),
          h(
            'p',
            { class: 'hint' },
            'Not drawn: add their CIDR to the site file’s places (or supply a .mmdb) to place them.',
          ),
          h('div', { class: 'mono small' }, unplaced.slice(0, 20).join(', ')),
        )
      : null,
  );
}
