/**
 * Offline world geometry (Natural Earth via the world-atlas package, bundled at build time):
 * the 1:50m countries for the world view, and the 1:10m ones — loaded only when the map shows
 * a small area, as our nodes sit tens of kilometres apart — for the countries in view.
 * Also the fitting of the view to a set of positions, and a graticule for scale.
 */
import type { Feature, FeatureCollection, Geometry, MultiPolygon, Polygon } from 'geojson';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import type { Position } from './api.js';

type Bbox = [number, number, number, number]; // lon min, lat min, lon max, lat max
type Country = Feature<Polygon | MultiPolygon, { name: string }> & { bbox: Bbox };

/** Below this span (degrees) the 1:10m outlines are used. */
const DETAIL_SPAN_DEG = 25;

function bboxOf(g: Geometry): Bbox {
  const b: Bbox = [180, 90, -180, -90];
  const visit = (c: unknown): void => {
    if (typeof (c as number[])[0] === 'number') {
      const [x, y] = c as [number, number];
      if (x < b[0]) b[0] = x;
      if (y < b[1]) b[1] = y;
      if (x > b[2]) b[2] = x;
      if (y > b[3]) b[3] = y;
    } else for (const d of c as unknown[]) visit(d);
  };
  if (g.type === 'Polygon' || g.type === 'MultiPolygon') visit(g.coordinates);
  return b;
}

function countries(topology: unknown): Country[] {
  const t = topology as Topology<{ countries: GeometryCollection<{ name: string }> }>;
  const fc = feature(t, t.objects.countries) as FeatureCollection<Polygon | MultiPolygon, { name: string }>;
  return fc.features
    .filter((f) => f.geometry)
    .map((f) => Object.assign(f, { bbox: bboxOf(f.geometry) }) as Country);
}

let coarse: Promise<Country[]> | undefined;
let fine: Promise<Country[]> | undefined;

const loadCoarse = () => {
  coarse ??= import('world-atlas/countries-50m.json').then((m) => countries(m.default));
  return coarse;
};
const loadFine = () => {
  fine ??= import('world-atlas/countries-10m.json').then((m) => countries(m.default));
  return fine;
};

const overlaps = (a: Bbox, b: Bbox) => a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];

/** Countries for a view: fine outlines for those near it when it is small, coarse for the rest. */
export async function worldFor(view: Bbox): Promise<{ geo: FeatureCollection; detailed: string[] }> {
  const world = await loadCoarse();
  const spanDeg = Math.max(view[2] - view[0], view[3] - view[1]);
  if (spanDeg > DETAIL_SPAN_DEG) return { geo: { type: 'FeatureCollection', features: world }, detailed: [] };
  const near: Bbox = [view[0] - 5, view[1] - 5, view[2] + 5, view[3] + 5];
  const detailed = (await loadFine()).filter((c) => overlaps(c.bbox, near));
  const names = new Set(detailed.map((c) => c.properties.name));
  const features = [...world.filter((c) => !names.has(c.properties.name)), ...detailed];
  return { geo: { type: 'FeatureCollection', features }, detailed: [...names] };
}

/** The box to show for some positions: padded, never smaller than minSpanDeg. */
export function fitBox(positions: Position[], minSpanDeg = 0.25): Bbox {
  if (!positions.length) return [-170, -60, 190, 80];
  let [x0, y0, x1, y1] = [180, 90, -180, -90];
  for (const p of positions) {
    x0 = Math.min(x0, p.lon);
    x1 = Math.max(x1, p.lon);
    y0 = Math.min(y0, p.lat);
    y1 = Math.max(y1, p.lat);
  }
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const w = Math.max(minSpanDeg, (x1 - x0) * 1.5);
  const hgt = Math.max(minSpanDeg * 0.8, (y1 - y0) * 1.5);
  return [cx - w / 2, Math.max(-85, cy - hgt / 2), cx + w / 2, Math.min(85, cy + hgt / 2)];
}

const STEPS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];

/** Grid lines for a view: about 4–8 per side, on round degrees; with the step in km. */
export function graticule(view: Bbox): { lines: [number, number][][]; stepDeg: number; stepKm: number } {
  const span = Math.max(view[2] - view[0], view[3] - view[1]);
  const step = STEPS.find((s) => span / s <= 8) ?? 30;
  const pad = span;
  const [x0, y0, x1, y1] = [
    view[0] - pad,
    Math.max(-85, view[1] - pad),
    view[2] + pad,
    Math.min(85, view[3] + pad),
  ];
  const lines: [number, number][][] = [];
  for (let x = Math.ceil(x0 / step) * step; x <= x1; x += step)
    lines.push([
      [x, y0],
      [x, y1],
    ]);
  for (let y = Math.ceil(y0 / step) * step; y <= y1; y += step)
    lines.push([
      [x0, y],
      [x1, y],
    ]);
  return { lines, stepDeg: step, stepKm: step * 111.32 };
}

/** Great-circle distance in km. */
export function distanceKm(a: Position, b: Position): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(s));
}
