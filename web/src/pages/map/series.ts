/**
 * What the map draws, as ECharts options: the outlines fitted to the view, the graticule,
 * a line per link (thickness by conversations, colour by locality) and the markers, each
 * with its tooltip.
 */
import * as fmt from '../../format.js';
import { distanceKm, type graticule } from '../../geo.js';
import { LOCALITY_COLOR, MONO, MUTED } from '../../theme.js';
import { type Link, type Marker, mainLocality } from './layout.js';

export type View = [number, number, number, number];

/** The outlines: fitted to `view` on a new fit (otherwise the operator's zoom and drag stay). */
export function geoOption(mapName: string, view: View, refit: boolean) {
  const midLat = (view[1] + view[3]) / 2;
  return {
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
  };
}

/** Every series, bottom to top: graticule, links, places, nodes. */
export function mapSeries(markers: Marker[], links: Link[], grid: ReturnType<typeof graticule>) {
  const maxConv = Math.max(1, ...links.map((l) => l.conversations), ...markers.map((m) => m.conversations));
  return [
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
    linkSeries(links, maxConv),
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
  ];
}

function linkSeries(links: Link[], maxConv: number) {
  return {
    id: 'links',
    type: 'lines',
    coordinateSystem: 'geo',
    z: 3,
    data: links.map((l) => ({
      coords: [
        [l.a.position.lon, l.a.position.lat],
        [l.b.position.lon, l.b.position.lat],
      ],
      lineStyle: {
        color: LOCALITY_COLOR[mainLocality(l)],
        width: 1 + 7 * Math.sqrt(l.conversations / maxConv),
        opacity: 0.85,
        curveness: 0.15,
      },
      link: l,
    })),
    tooltip: { formatter: (p: { data: { link: Link } }) => linkTip(p.data.link) },
  };
}

function linkTip(l: Link): string {
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
    l.pairs.length > 8 ? `<div style="color:${MUTED}">+${l.pairs.length - 8} more pairs</div>` : '';
  return `<b>${l.a.name} ↔ ${l.b.name}</b> <span style="color:${MUTED}">${km.toFixed(1)} km</span><br/>${l.conversations} conversations · ${fmt.bytes(l.bytes)}<table style="margin-top:4px">${rows}</table>${more}`;
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
