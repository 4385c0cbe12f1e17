/**
 * Services: the service graph (GET /api/v1/services/graph) — services as nodes coloured by
 * health, client → server edges labelled with rps, error % and p95 — the registry's table
 * with each service's golden signals, and, for the service clicked, its series against its
 * objective (target p95, error budget) with the breaches shaded and listed.
 */
import type {
  ServiceGraph,
  ServiceHealth,
  ServiceRow,
  ServiceSeries,
} from '../../../src/tower/api/services-types.js';
import { api, query } from '../api.js';
import { AXIS, chart, GRAPH_LABELS } from '../charts.js';
import { empty, fill, gridTable, h } from '../dom.js';
import * as fmt from '../format.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { state } from '../state.js';
import { MUTED } from '../theme.js';

export const HEALTH_COLOR: Record<ServiceHealth, string> = {
  ok: '#34d399',
  degraded: '#fbbf24',
  failing: '#f87171',
  idle: '#6b7280',
};

const ms = (v: number | null) => (v === null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
const rps = (v: number) => `${v < 1 ? v.toFixed(2) : v < 10 ? v.toFixed(1) : Math.round(v)} req/s`;
const pct = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} %`;

function drawGraph(el: HTMLElement, g: ServiceGraph, onPick: (name: string) => void): void {
  const c = chart('services', el);
  c.setOption({
    tooltip: { trigger: 'item' },
    series: [
      {
        type: 'graph',
        layout: 'circular',
        roam: true,
        symbolSize: 40,
        edgeSymbol: ['none', 'arrow'],
        edgeSymbolSize: 10,
        ...GRAPH_LABELS,
        data: g.nodes.map((n) => ({
          name: n.id,
          symbol: n.kind === 'client' ? 'roundRect' : 'circle',
          itemStyle: { color: '#1f2937', borderColor: HEALTH_COLOR[n.health], borderWidth: 3 },
          tooltip: {
            formatter: `${n.id}: ${n.kind === 'service' ? `${n.precedence}, ${n.health}` : 'client'}`,
          },
        })),
        links: g.edges.map((e) => ({
          source: e.from,
          target: e.to,
          label: `${rps(e.rps)} · ${pct(e.errorPct)} · p95 ${ms(e.p95Ms)}`,
          lineStyle: {
            color:
              e.errorPct >= g.thresholds.failingAtPct
                ? '#f87171'
                : e.errorPct > g.thresholds.degradedAbovePct
                  ? '#fbbf24'
                  : '#60a5fa',
            width: 2,
            curveness: 0.15,
          },
        })),
      },
    ],
  });
  c.off('click');
  c.on('click', (p) => {
    if (p.dataType === 'node' && g.nodes.some((n) => n.id === p.name && n.kind === 'service')) onPick(p.name);
  });
}

/** The QoS intent in one cell: the guarantee, whether it holds, and the worst hop's rate and drops. */
function intentCell(s: ServiceRow): HTMLElement {
  const i = s.intent;
  if (!i) return h('td', { class: 'muted small' }, '–');
  const worst = i.worstHop;
  return h(
    'td',
    { class: 'small', 'data-intent': i.status, title: i.why ?? '' },
    h('span', { class: `intent ${i.status}` }, i.status),
    ` ≥ ${fmt.bits(i.guaranteeBps)}`,
    worst
      ? h(
          'span',
          { class: 'muted' },
          ` · worst ${worst.node}/${worst.iface} ${worst.rateBps === null ? '–' : fmt.bits(worst.rateBps)}, ${worst.drops ?? '–'} drops`,
        )
      : '',
  );
}

function row(s: ServiceRow, onPick: (name: string) => void): HTMLElement {
  const tr = h(
    'tr',
    { 'data-service': s.name, 'data-health': s.health, class: 'clickable' },
    h('td', {}, s.name),
    h('td', {}, h('span', { class: `health ${s.health}` }, s.health)),
    h('td', {}, `${s.precedence} → ${s.qosClass}`),
    h('td', { class: 'num' }, rps(s.rps)),
    h('td', { class: 'num' }, `${pct(s.errorPct)} (${s.errors4xx} 4xx, ${s.errors5xx} 5xx)`),
    h('td', { class: 'num' }, `${ms(s.p50Ms)} / ${ms(s.p95Ms)} / ${ms(s.p99Ms)}`),
    h('td', { class: 'num' }, ms(s.clientP95Ms)),
    h('td', { class: 'num' }, ms(s.networkP95Ms)),
    h('td', { class: 'num' }, fmt.bits(s.bps)),
    h('td', { class: 'muted small' }, s.instances.map((i) => `${i.node} ${i.address}:${i.port}`).join(', ')),
    h(
      'td',
      { class: 'muted small' },
      s.objective ? `p95 ≤ ${s.objective.targetP95Ms} ms, errors ≤ ${s.objective.errorBudgetPct} %` : '–',
    ),
    intentCell(s),
  );
  tr.addEventListener('click', () => onPick(s.name));
  return tr;
}

function drawSeries(el: HTMLElement, s: ServiceSeries, w: { from: number; to: number }): void {
  const c = chart('service-series', el);
  const target = s.objective?.targetP95Ms;
  c.setOption({
    legend: { textStyle: { color: MUTED }, top: 0 },
    grid: { left: 56, right: 56, top: 30, bottom: 30 },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'time', min: w.from, max: w.to, ...AXIS },
    yAxis: [
      { type: 'value', name: 'ms', ...AXIS },
      { type: 'value', name: '%', max: 100, ...AXIS, splitLine: { show: false } },
    ],
    animation: false,
    series: [
      {
        type: 'line',
        name: 'p95',
        showSymbol: s.points.length < 30,
        data: s.points.map((p) => [p.timeMs, p.p95Ms]),
        markArea: {
          itemStyle: { color: 'rgba(248, 113, 113, 0.15)' },
          data: s.breaches.map((b) => [{ xAxis: b.fromMs }, { xAxis: b.toMs }]),
        },
        ...(target
          ? {
              markLine: {
                symbol: 'none',
                data: [{ yAxis: target, name: 'target' }],
                lineStyle: { color: '#f87171', type: 'dashed' },
              },
            }
          : {}),
      },
      {
        type: 'line',
        name: 'errors %',
        yAxisIndex: 1,
        showSymbol: false,
        data: s.points.map((p) => [p.timeMs, p.errorPct]),
      },
      {
        type: 'bar',
        name: 'req/s',
        yAxisIndex: 1,
        data: s.points.map((p) => [p.timeMs, p.rps]),
        itemStyle: { opacity: 0.35 },
      },
    ],
  });
}

export function mountServices(ctx: PageContext): () => void {
  const error = h('div', { class: 'error-bar', hidden: true });
  const summary = h('div', { class: 'muted', id: 'services-summary' });
  const graph = h('div', { class: 'panel chart', id: 'services-graph', style: 'height: 380px' });
  const { table, body } = gridTable('services-rows', [
    'service',
    'health',
    'precedence → class',
    'rps',
    'errors',
    'p50 / p95 / p99 (server)',
    'p95 (client)',
    'network',
    'bytes',
    'instances',
    'objective',
    'QoS intent',
  ]);
  const detailHead = h('h2', { id: 'service-detail-name' }, '');
  const seriesEl = h('div', { class: 'chart', id: 'service-series', style: 'height: 260px' });
  const breaches = h('ul', { id: 'service-breaches', class: 'small' });
  const intentHops = h('ul', { id: 'service-intent', class: 'small' });
  let latest: ServiceRow[] = [];
  const detail = h(
    'div',
    { class: 'panel', id: 'service-detail', hidden: true },
    detailHead,
    seriesEl,
    breaches,
    intentHops,
  );
  const content = h('div', {}, graph, h('div', { class: 'panel' }, table), detail);
  fill(ctx.root, error, h('div', { class: 'page-head' }, h('h1', {}, 'Services'), summary), content);
  let picked: string | undefined;

  const loadDetail = async () => {
    if (!picked) return;
    const w = state.windowParams();
    const s = await api<ServiceSeries>(
      `services/${encodeURIComponent(picked)}/series${query({ ...w, step: '10s' })}`,
    );
    detail.hidden = false;
    detailHead.textContent = s.objective
      ? `${s.name}: p95 target ${s.objective.targetP95Ms} ms, error budget ${s.objective.errorBudgetPct} %`
      : `${s.name}: no objective declared`;
    drawSeries(seriesEl, s, w);
    const intent = latest.find((r) => r.name === picked)?.intent;
    // Each link of the service's paths: the class's rate there against the guarantees crossing it.
    intentHops.replaceChildren(
      ...(intent
        ? [
            h('li', {}, `QoS intent: ${intent.status}${intent.why ? ` (${intent.why})` : ''}`),
            ...intent.hops.map((x) =>
              h(
                'li',
                { 'data-hop': `${x.node}/${x.iface}` },
                `${x.node}/${x.iface}: ${x.rateBps === null ? '–' : fmt.bits(x.rateBps)} of ${fmt.bits(x.guaranteeBps)} guaranteed, ${x.drops ?? '–'} drops in ${(x.windowMs / 1000).toFixed(0)} s${x.enforced ? '' : ', rules not in force yet'}`,
              ),
            ),
          ]
        : []),
    );
    breaches.replaceChildren(
      ...(s.breaches.length
        ? s.breaches.map((b) =>
            h('li', { class: 'breach' }, `${fmt.time(b.fromMs)} – ${fmt.time(b.toMs)}: ${b.what}`),
          )
        : [
            h(
              'li',
              { class: 'muted' },
              s.objective ? 'no breach in this window' : 'declare an objective to see breaches',
            ),
          ]),
    );
  };
  const pick = (name: string) => {
    picked = name;
    void loadDetail().catch((err: Error) => {
      error.hidden = false;
      error.textContent = `The tower did not answer: ${err.message}`;
    });
  };

  return refresher(
    async () => {
      const w = state.windowParams();
      const [rows, g] = await Promise.all([
        api<ServiceRow[]>(`services${query(w)}`),
        api<ServiceGraph>(`services/graph${query(w)}`),
      ]);
      error.hidden = true;
      if (!rows.length) {
        summary.textContent = '';
        fill(
          content,
          empty(
            'No service declared',
            'Declare services in tower.yaml, node.yaml or with `tacmesh services apply` (docs/services.md).',
          ),
        );
        return;
      }
      if (!content.contains(graph)) fill(content, graph, h('div', { class: 'panel' }, table), detail);
      const count = (x: ServiceHealth) => rows.filter((r) => r.health === x).length;
      summary.textContent = `${rows.length} services: ${count('ok')} ok, ${count('degraded')} degraded, ${count('failing')} failing, ${count('idle')} idle`;
      drawGraph(graph, g, pick);
      latest = rows;
      body.replaceChildren(...rows.map((r) => row(r, pick)));
      await loadDetail();
    },
    {
      everyMs: 5000,
      onError: (err) => {
        error.hidden = false;
        error.textContent = `The tower did not answer: ${err.message}`;
      },
    },
  );
}
