/**
 * Mesh: the radio links as the nodes measure them and the paths their routes make
 * (GET /api/v1/mesh). A schematic on the nodes' positions — links coloured by state,
 * thicker the busier, labelled with RTT and loss, a down link dashed, the current path
 * between two chosen nodes highlighted — a table of the links (what each end saw, why a
 * link is not up), a table of the paths (a pair relayed while their own link is up stands
 * out), and a link's time series on click (GET /api/v1/mesh/links/{a}/{b}).
 */
import type { EChartsType } from 'echarts/core';
import type { LinkSeries, MeshLink, MeshPath, MeshView } from '../../../src/tower/api/mesh-types.js';
import { api } from '../api.js';
import { AXIS, chart, dispose } from '../charts.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { state } from '../state.js';
import { MUTED, TEXT } from '../theme.js';

const STATE_COLOR: Record<MeshLink['state'], string> = {
  up: '#34d399',
  degraded: '#fbbf24',
  down: '#f87171',
};
/** The chosen path: drawn over the link colours. */
const PATH_COLOR = '#60a5fa';

const ms = (v: number | null) => (v === null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
const pct = (v: number | null) => (v === null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v)} %`);
const pairKey = (a: string, b: string) => [a, b].sort().join('—');

/** One line per distinct route a pair's prefixes take: "n1 → n3 → n2 (10.77.21.0/24) since …". */
function describe(paths: MeshPath[]): string {
  const groups = new Map<string, MeshPath[]>();
  for (const p of paths) {
    const key = `${p.hops.join(' → ')}|${p.status}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()]
    .map((g) => {
      const [p] = g as [MeshPath];
      const why = p.status === 'ok' ? '' : ` — ${p.status}${p.via ? ` at ${p.via}` : ''}`;
      const since = p.since ? `, since ${fmt.time(p.since)}` : '';
      return `${p.hops.join(' → ')}${why} (${g.map((x) => x.prefix).join(', ')}${since})`;
    })
    .join('; ');
}

/** The links a set of paths runs over, as pair keys. */
function pathEdges(paths: MeshPath[]): Set<string> {
  const edges = new Set<string>();
  for (const p of paths)
    for (let i = 1; i < p.hops.length; i++) edges.add(pairKey(p.hops[i - 1] as string, p.hops[i] as string));
  return edges;
}

function draw(c: EChartsType, view: MeshView, onPath: Set<string>): void {
  const placed = view.nodes.filter((n) => n.position);
  const known = new Set(placed.map((n) => n.name));
  const pathNodes = new Set([...onPath].flatMap((k) => k.split('—')));
  c.setOption({
    tooltip: { trigger: 'item' },
    series: [
      {
        type: 'graph',
        layout: placed.length === view.nodes.length ? 'none' : 'circular',
        roam: true,
        symbolSize: 34,
        label: { show: true, color: TEXT, fontSize: 13 },
        edgeLabel: {
          show: true,
          color: MUTED,
          fontSize: 11,
          formatter: (p: { data: { label?: string } }) => p.data.label ?? '',
        },
        itemStyle: { color: '#1f2937', borderColor: '#60a5fa', borderWidth: 2 },
        data: view.nodes.map((n) => ({
          name: n.name,
          // North up: latitude grows upwards, the canvas's y downwards.
          ...(n.position ? { x: n.position.lon * 1000, y: -n.position.lat * 1000 } : {}),
          itemStyle: {
            ...(n.connected ? {} : { borderColor: '#6b7280' }),
            ...(pathNodes.has(n.name) ? { color: '#1e3a5f', borderColor: PATH_COLOR, borderWidth: 4 } : {}),
          },
        })),
        links: view.links
          .filter((l) => known.has(l.a) && known.has(l.b))
          .map((l) => {
            const highlighted = onPath.has(pairKey(l.a, l.b));
            return {
              source: l.a,
              target: l.b,
              label:
                l.state === 'down' ? 'down' : `${ms(l.rttMs)} · ${pct(Math.max(l.lossPct.ab, l.lossPct.ba))}`,
              lineStyle: {
                color: highlighted ? PATH_COLOR : STATE_COLOR[l.state],
                // The path's links wider than any other, however busy (a bulk transfer fills a link).
                width: highlighted ? 12 : 2 + Math.min(8, l.utilization * 8),
                type: l.state === 'down' ? 'dashed' : 'solid',
                opacity: highlighted || !onPath.size ? 0.95 : 0.45,
              },
            };
          }),
      },
    ],
  });
}

function linkRow(l: MeshLink, chosen: boolean, choose: () => void): HTMLElement {
  const why = l.ends.flatMap((e) => e.why.map((w) => `${e.node}: ${w}`));
  return h(
    'tr',
    {
      'data-link': `${l.a}-${l.b}`,
      'data-state': l.state,
      class: `clickable ${chosen ? 'selected' : ''}`,
      title: "this link's time series",
      onclick: choose,
    },
    h('td', {}, `${l.a} — ${l.b}`),
    h('td', {}, h('span', { class: `link-state ${l.state}` }, l.state)),
    h('td', { class: 'num' }, ms(l.rttMs)),
    h('td', { class: 'num' }, ms(l.jitterMs)),
    h('td', { class: 'num' }, `${pct(l.lossPct.ab)} / ${pct(l.lossPct.ba)}`),
    h('td', { class: 'num' }, fmt.bits(l.capacityBps)),
    h('td', { class: 'num' }, `${fmt.bits(l.loadBps.ab)} / ${fmt.bits(l.loadBps.ba)}`),
    h('td', { class: 'num' }, pct(l.utilization * 100)),
    h('td', { class: 'muted' }, fmt.ago(l.since)),
    h('td', { class: 'muted small' }, why.join('; ')),
  );
}

/** A row per node pair and route taken; a pair relayed while its own link is up is marked. */
function pathRows(view: MeshView): HTMLElement[] {
  const direct = new Set(view.links.filter((l) => l.state === 'up').map((l) => pairKey(l.a, l.b)));
  const byPair = new Map<string, MeshPath[]>();
  for (const p of view.paths)
    byPair.set(`${p.from}>${p.to}`, [...(byPair.get(`${p.from}>${p.to}`) ?? []), p]);
  return [...byPair.values()].map((paths) => {
    const [p] = paths as [MeshPath];
    const relayed = direct.has(pairKey(p.from, p.to)) && paths.some((x) => x.hops.length > 2);
    const bad = paths.some((x) => x.status !== 'ok');
    return h(
      'tr',
      { 'data-path': `${p.from}-${p.to}`, class: relayed || bad ? 'warn' : '' },
      h('td', {}, `${p.from} → ${p.to}`),
      h('td', { class: 'mono small' }, describe(paths)),
      h(
        'td',
        { class: 'muted small' },
        relayed ? 'relayed while their own link is up' : bad ? 'not reachable' : '',
      ),
    );
  });
}

/** The chosen link's RTT and loss, and its load each way against its capacity. */
function drawSeries(rttEl: HTMLElement, loadEl: HTMLElement, s: LinkSeries): void {
  const { from, to } = state.windowParams();
  const xAxis = { type: 'time', min: from, max: to, ...AXIS, splitLine: { show: false } };
  const line = (name: string, data: [number, number | null][], extra: object = {}) => ({
    id: name,
    name,
    type: 'line',
    showSymbol: false,
    connectNulls: false,
    data,
    ...extra,
  });
  const at = <T>(f: (p: LinkSeries['points'][number]) => T) =>
    s.points.map((p) => [p.t, f(p)] as [number, T]);
  const legend = { top: 0, left: 'center', textStyle: { color: MUTED }, itemWidth: 10, itemHeight: 4 };
  chart('mesh-link-rtt', rttEl).setOption({
    animation: false,
    grid: { left: 56, right: 56, top: 28, bottom: 28 },
    legend,
    tooltip: { trigger: 'axis' },
    xAxis,
    yAxis: [
      { type: 'value', name: 'ms', ...AXIS },
      { type: 'value', name: 'loss %', min: 0, ...AXIS, splitLine: { show: false } },
    ],
    series: [
      line(
        'RTT',
        at((p) => p.rttMs),
        { lineStyle: { color: '#60a5fa' }, itemStyle: { color: '#60a5fa' } },
      ),
      line(
        'jitter',
        at((p) => p.jitterMs),
        { lineStyle: { color: '#a78bfa' }, itemStyle: { color: '#a78bfa' } },
      ),
      line(
        `loss ${s.a}→${s.b}`,
        at((p) => p.lossPct.ab),
        { yAxisIndex: 1, lineStyle: { color: '#f87171' }, itemStyle: { color: '#f87171' } },
      ),
      line(
        `loss ${s.b}→${s.a}`,
        at((p) => p.lossPct.ba),
        { yAxisIndex: 1, lineStyle: { color: '#fb923c' }, itemStyle: { color: '#fb923c' } },
      ),
    ],
  });
  chart('mesh-link-load', loadEl).setOption({
    animation: false,
    grid: { left: 72, right: 56, top: 28, bottom: 28 },
    legend,
    tooltip: { trigger: 'axis', valueFormatter: (v: number) => fmt.bits(v) },
    xAxis,
    yAxis: {
      type: 'value',
      name: 'bit/s',
      min: 0,
      ...AXIS,
      axisLabel: { ...AXIS.axisLabel, formatter: (v: number) => fmt.bits(v).replace(' bit/s', '') },
    },
    series: [
      line(
        `load ${s.a}→${s.b}`,
        at((p) => p.loadBps.ab),
        { lineStyle: { color: '#34d399' }, itemStyle: { color: '#34d399' }, areaStyle: { opacity: 0.08 } },
      ),
      line(
        `load ${s.b}→${s.a}`,
        at((p) => p.loadBps.ba),
        { lineStyle: { color: '#22d3ee' }, itemStyle: { color: '#22d3ee' }, areaStyle: { opacity: 0.08 } },
      ),
      line(
        'capacity',
        at((p) => p.capacityBps),
        { lineStyle: { color: '#fbbf24', type: 'dashed' }, itemStyle: { color: '#fbbf24' } },
      ),
    ],
  });
}

export function mountMesh(ctx: PageContext): () => void {
  const error = h('div', { class: 'error-bar', hidden: true });
  const summary = h('div', { class: 'muted', id: 'mesh-summary' });
  const fromSel = h('select', { id: 'mesh-from' });
  const toSel = h('select', { id: 'mesh-to' });
  const pathText = h('div', { class: 'mono small', id: 'mesh-path' });
  const backText = h('div', { class: 'mono small muted', id: 'mesh-path-back' });
  const graph = h('div', { class: 'chart', id: 'mesh-graph', style: 'height: 420px' });
  const linkTitle = h('span', { class: 'muted' });
  const rttEl = h('div', { class: 'chart short', id: 'mesh-link-rtt' });
  const loadEl = h('div', { class: 'chart short', id: 'mesh-link-load' });
  const linkCard = h(
    'section',
    { class: 'card', id: 'mesh-link', hidden: true },
    h('h2', {}, 'Link over time', linkTitle),
    rttEl,
    loadEl,
  );
  const linksBody = h('tbody', { id: 'mesh-links' });
  const pathsBody = h('tbody', { id: 'mesh-paths' });
  const head = (...titles: string[]) => h('thead', {}, h('tr', {}, ...titles.map((t) => h('th', {}, t))));
  const linksTable = h(
    'table',
    { class: 'grid' },
    head(
      'link',
      'state',
      'RTT',
      'jitter',
      'loss a→b / b→a',
      'capacity',
      'load a→b / b→a',
      'busy',
      'since',
      'why',
    ),
    linksBody,
  );
  const pathsTable = h(
    'table',
    { class: 'grid' },
    head('pair', 'path, hop by hop (prefixes, since)', ''),
    pathsBody,
  );
  const sections = [
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Path from', fromSel, 'to', toSel),
      pathText,
      backText,
      graph,
    ),
    linkCard,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Radio links', h('span', { class: 'muted' }, 'click one for its time series')),
      linksTable,
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Paths', h('span', { class: 'muted' }, "from the nodes' next hops")),
      pathsTable,
    ),
  ];
  const content = h('div', { class: 'mesh-page' }, sections);
  fill(ctx.root, error, h('div', { class: 'page-head' }, h('h1', {}, 'Mesh'), summary), content);

  let view: MeshView | undefined;
  let chosenLink: { a: string; b: string } | undefined;
  let graphChart: EChartsType | undefined;
  const showError = (err: Error) => {
    error.hidden = false;
    error.textContent = `The tower did not answer: ${err.message}`;
  };
  const loadSeries = async () => {
    if (!chosenLink) return;
    const { a, b } = chosenLink;
    const path = `mesh/links/${encodeURIComponent(a)}/${encodeURIComponent(b)}${state.params({}, false)}`;
    const series = await api<LinkSeries>(path);
    linkCard.hidden = false;
    linkCard.dataset.link = `${a}-${b}`;
    linkTitle.textContent = `${a} — ${b} · ${fmt.span(series.stepMs)} buckets`;
    drawSeries(rttEl, loadEl, series);
  };
  const chooseLink = (a: string, b: string) => {
    chosenLink = { a, b };
    render();
    loadSeries().catch(showError);
  };
  const render = () => {
    if (!view) return;
    const from = fromSel.value;
    const to = toSel.value;
    const there = view.paths.filter((p) => p.from === from && p.to === to);
    const back = view.paths.filter((p) => p.from === to && p.to === from);
    pathText.dataset.hops = there[0]?.hops.join(',') ?? '';
    pathText.textContent = there.length
      ? describe(there)
      : from === to
        ? ''
        : `no path from ${from} to ${to} is reported`;
    backText.textContent = back.length ? `back: ${describe(back)}` : '';
    if (!graphChart || graphChart.isDisposed()) {
      graph.replaceChildren();
      graphChart = chart('mesh', graph);
      graphChart.on('click', (p) => {
        const d = p.data as { source?: string; target?: string };
        if (p.dataType === 'edge' && d.source && d.target) chooseLink(d.source, d.target);
      });
    }
    draw(graphChart, view, pathEdges(there));
    linksBody.replaceChildren(
      ...view.links.map((l) =>
        linkRow(l, chosenLink ? pairKey(l.a, l.b) === pairKey(chosenLink.a, chosenLink.b) : false, () =>
          chooseLink(l.a, l.b),
        ),
      ),
    );
    pathsBody.replaceChildren(...pathRows(view));
  };
  const options = (sel: HTMLSelectElement, names: string[], fallback: string | undefined) => {
    const keep = sel.value || fallback || '';
    if ([...sel.options].map((o) => o.value).join() !== names.join())
      sel.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    sel.value = names.includes(keep) ? keep : (fallback ?? '');
  };
  fromSel.addEventListener('change', render);
  toSel.addEventListener('change', render);

  return refresher(
    async () => {
      const next = await api<MeshView>('mesh');
      error.hidden = true;
      if (!next.links.length && !next.paths.length) {
        summary.textContent = '';
        view = undefined;
        dispose('mesh');
        graphChart = undefined;
        fill(
          content,
          empty(
            'No radio link reported',
            'Nodes report the uplinks that have a `mesh:` section in node.yaml (docs/mesh.md).',
          ),
        );
        return;
      }
      view = next;
      if (!content.contains(graph)) fill(content, sections);
      const count = (s: MeshLink['state']) => view?.links.filter((l) => l.state === s).length ?? 0;
      summary.textContent = `${view.links.length} radio links: ${count('up')} up, ${count('degraded')} degraded, ${count('down')} down`;
      const names = view.nodes.map((n) => n.name).sort();
      options(fromSel, names, names[0]);
      options(toSel, names, names.at(-1));
      render();
      await loadSeries();
    },
    { everyMs: 2000, alsoWhenNotLive: true, onError: showError },
  );
}
