/**
 * Map: where the nodes are and where both ends of each conversation are, on offline
 * outlines; a line per pair of places, as thick as the pair is frequent and coloured by
 * locality; hovering a line shows its address pairs and counts. The view fits the nodes and
 * endpoints (they may be a few kilometres apart) and can be zoomed and dragged.
 */
import type { EChartsType } from 'echarts/core';
import { registerMap } from 'echarts/core';
import { api, type Locality, type MapData, type Place, type Position } from '../api.js';
import { chart, dispose, TOOLTIP } from '../charts.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import { distanceKm, fitBox, graticule, worldFor } from '../geo.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { state } from '../state.js';
import { LOCALITY_COLOR, MONO, MUTED } from '../theme.js';

interface Marker {
  key: string;
  name: string;
  kind: 'node' | 'place';
  position: Position;
  ips: Set<string>;
  conversations: number;
  connected?: boolean;
}

interface Link {
  a: Marker;
  b: Marker;
  conversations: number;
  bytes: number;
  byLocality: Partial<Record<Locality, number>>;
  pairs: { src: string; dst: string; conversations: number; bytes: number }[];
}

const keyOf = (p: Position) => `${p.lat.toFixed(4)},${p.lon.toFixed(4)}`;

/** Markers (one per position) and links (one per pair of positions) from the API's pairs. */
export function layout(data: MapData) {
  const markers = new Map<string, Marker>();
  const unplaced = new Set<string>();
  const markerAt = (position: Position, name: string, kind: Marker['kind']): Marker => {
    const key = keyOf(position);
    let m = markers.get(key);
    if (!m) {
      m = { key, name, kind, position, ips: new Set(), conversations: 0 };
      markers.set(key, m);
    } else if (kind === 'node' && m.kind !== 'node') {
      m.kind = 'node';
      m.name = name;
    }
    return m;
  };
  for (const n of data.nodes) {
    if (!n.position) continue;
    const m = markerAt(n.position, n.name, 'node');
    m.connected = n.connected;
  }
  const place = (ip: string, p: Place): Marker | undefined => {
    if (!p.position) {
      unplaced.add(ip);
      return undefined;
    }
    const m = markerAt(p.position, p.node ?? p.label ?? ip, p.node ? 'node' : 'place');
    m.ips.add(ip);
    return m;
  };
  const links = new Map<string, Link>();
  for (const pair of data.pairs) {
    const a = place(pair.src, pair.srcPlace);
    const b = place(pair.dst, pair.dstPlace);
    if (!a || !b) continue;
    a.conversations += pair.conversations;
    if (b !== a) b.conversations += pair.conversations;
    if (a === b) continue;
    const key = [a.key, b.key].sort().join('|');
    let l = links.get(key);
    if (!l) {
      // Ends in a fixed order, so the line curves the same way on every refresh.
      const [first, second] = a.key < b.key ? [a, b] : [b, a];
      l = { a: first, b: second, conversations: 0, bytes: 0, byLocality: {}, pairs: [] };
      links.set(key, l);
    }
    l.conversations += pair.conversations;
    l.bytes += pair.bytes;
    l.byLocality[pair.locality] = (l.byLocality[pair.locality] ?? 0) + pair.conversations;
    l.pairs.push({ src: pair.src, dst: pair.dst, conversations: pair.conversations, bytes: pair.bytes });
  }
  return { markers: [...markers.values()], links: [...links.values()], unplaced: [...unplaced] };
}

function mainLocality(l: Link): Locality {
  let best: Locality = 'external';
  let n = -1;
  for (const [loc, c] of Object.entries(l.byLocality) as [Locality, number][]) {
    if (c > n) {
      best = loc;
      n = c;
    }
  }
  return best;
}

function markerTip(m: Marker): string {
  const ips = [...m.ips].sort();
  return `<b>${m.name}</b> <span style="color:${MUTED}">${m.kind === 'place' ? 'place' : m.connected === undefined ? 'node (site file)' : m.connected ? 'node · connected' : 'node · disconnected'}</span><br/>${m.position.lat.toFixed(4)}, ${m.position.lon.toFixed(4)}<br/>${m.conversations} conversations<br/><span style="font-family:${MONO}">${ips.slice(0, 8).join('<br/>')}</span>${ips.length > 8 ? `<br/>+${ips.length - 8} more` : ''}`;
}

/** Scatter markers of one kind (nodes: diamonds, sized up; places: circles), sized by conversations. */
function markerSeries(
  markers: Marker[],
  kind: Marker['kind'],
  maxConv: number,
  style: Record<string, unknown>,
) {
  const [base, extra] = kind === 'node' ? [16, 8] : [8, 10];
  return {
    id: kind === 'node' ? 'nodes' : 'places',
    type: 'scatter',
    coordinateSystem: 'geo',
    ...style,
    data: markers
      .filter((m) => m.kind === kind)
      .map((m) => ({
        name: m.name,
        value: [m.position.lon, m.position.lat, m.conversations],
        symbolSize: base + extra * Math.sqrt(m.conversations / maxConv),
        // Nodes: connected green, disconnected grey, known only from the site file blue.
        ...(kind === 'node'
          ? {
              itemStyle: {
                color: m.connected === undefined ? '#93c5fd' : m.connected ? '#34d399' : '#6b7280',
              },
            }
          : {}),
        marker: m,
      })),
    tooltip: { formatter: (p: { data: { marker: Marker } }) => markerTip(p.data.marker) },
  };
}

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
  let view: [number, number, number, number] = [-170, -60, 190, 80];
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
      renderSide(markers, links, unplaced);
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
    const maxConv = Math.max(1, ...links.map((l) => l.conversations), ...markers.map((m) => m.conversations));
    const midLat = (view[1] + view[3]) / 2;
    c.setOption(
      {
        geo: {
          map: mapName,
          roam: true,
          ...(refit
            ? {
                // Without a projection ECharts takes the raw rectangle: [lon, lat] minimum, then maximum.
                boundingCoords: [
                  [view[0], view[1]],
                  [view[2], view[3]],
                ],
              }
            : {}),
          aspectScale: Math.cos((midLat * Math.PI) / 180),
          silent: true,
          itemStyle: { areaColor: '#1b2230', borderColor: '#3d4a5e', borderWidth: 0.8 },
          label: { show: false },
          scaleLimit: { min: 0.5, max: 200 },
        },
        tooltip: { ...TOOLTIP, trigger: 'item', confine: true },
        series: [
          {
            id: 'graticule',
            type: 'lines',
            coordinateSystem: 'geo',
            polyline: true,
            silent: true,
            z: 1,
            lineStyle: { color: '#34415a', width: 0.8, type: 'dashed', opacity: 0.9 },
            data: grid.lines.map((coords) => ({ coords })),
          },
          {
            id: 'links',
            type: 'lines',
            coordinateSystem: 'geo',
            z: 3,
            data: links.map((l) => {
              const loc = mainLocality(l);
              return {
                coords: [
                  [l.a.position.lon, l.a.position.lat],
                  [l.b.position.lon, l.b.position.lat],
                ],
                lineStyle: {
                  color: LOCALITY_COLOR[loc],
                  width: 1 + 7 * Math.sqrt(l.conversations / maxConv),
                  opacity: 0.85,
                  curveness: 0.15,
                },
                link: l,
              };
            }),
            tooltip: {
              formatter: (p: { data: { link: Link } }) => {
                const l = p.data.link;
                const km = distanceKm(l.a.position, l.b.position);
                const rows = l.pairs
                  .sort((x, y) => y.conversations - x.conversations)
                  .slice(0, 8)
                  .map(
                    (x) =>
                      `<tr><td style="font-family:${MONO}">${x.src} → ${x.dst}</td><td style="text-align:right;padding-left:10px">${x.conversations}</td><td style="text-align:right;padding-left:10px;color:${MUTED}">${fmt.bytes(x.bytes)}</td></tr>`,
                  )
                  .join('');
                const more =
                  l.pairs.length > 8
                    ? `<div style="color:${MUTED}">+${l.pairs.length - 8} more pairs</div>`
                    : '';
                return `<b>${l.a.name} ↔ ${l.b.name}</b> <span style="color:${MUTED}">${km.toFixed(1)} km</span><br/>${l.conversations} conversations · ${fmt.bytes(l.bytes)}<table style="margin-top:4px">${rows}</table>${more}`;
              },
            },
          },
          markerSeries(markers, 'place', maxConv, {
            z: 4,
            itemStyle: { color: '#f59e0b', borderColor: '#0b0f15', borderWidth: 1.5 },
            label: { show: true, position: 'right', formatter: '{b}', color: '#e5e7eb', fontSize: 11 },
          }),
          markerSeries(markers, 'node', maxConv, {
            z: 5,
            symbol: 'diamond',
            itemStyle: { borderColor: '#0b0f15', borderWidth: 2 },
            label: {
              show: true,
              position: 'top',
              formatter: '{b}',
              color: '#f9fafb',
              fontWeight: 'bold',
              fontSize: 12,
              textBorderColor: '#0b0f15',
              textBorderWidth: 3,
            },
          }),
        ],
      },
      // A new fit starts a fresh view (no zoom or drag left from before); otherwise keep the operator's view.
      refit ? { notMerge: true } : { replaceMerge: ['series'] },
    );
    note.textContent = scaleNote(c, grid);
    renderSide(markers, links, unplaced);
    ctx.root.dataset.markers = JSON.stringify(
      markers.map((m) => ({ name: m.name, kind: m.kind, ...m.position })),
    );
  };

  const renderSide = (markers: Marker[], links: Link[], unplaced: string[]) => {
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
                h(
                  'tr',
                  {},
                  h('th', {}, 'place'),
                  h('th', {}, 'lat, lon'),
                  h('th', { class: 'num' }, 'conv.'),
                ),
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
