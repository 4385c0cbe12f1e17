/**
 * Overview: the paper's four pies (Fig. 13) — how often each address is an end of a
 * conversation inside one node, between nodes, with the outside, and over all three —
 * with throughput per node, top talkers and the window's counts. Clicking a slice (or its
 * row) filters the whole page by that address and the pie's locality. Under the throughput's
 * time axis, a strip of the mesh's events (GET /api/v1/mesh/events).
 */
import type { EChartsType } from 'echarts/core';
import type { MeshEvent, MeshEvents } from '../../../src/tower/api/mesh-types.js';
import {
  api,
  type Locality,
  type PieSlice,
  type Pies,
  type Summary,
  type Talker,
  type Throughput,
} from '../api.js';
import { AXIS, chart, dispose } from '../charts.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import { live } from '../live.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { state } from '../state.js';
import { colorOf, LOCALITY_COLOR, LOCALITY_LABEL, MONO, MUTED } from '../theme.js';

const PIE_KINDS: (Locality | 'all')[] = ['intra', 'inter', 'external', 'all'];

const PIE_EMPTY: Record<Locality | 'all', string> = {
  intra: 'No conversation had both ends in the subnets of one node.',
  inter: 'No conversation joined subnets of two different nodes.',
  external: 'No conversation reached an address outside every node’s subnets.',
  all: 'No flow records in this window: are nodes connected and traffic flowing?',
};

const EVENT_STYLE: Record<MeshEvent['kind'], { row: 'links' | 'routes'; color: string; symbol: string }> = {
  'link-down': { row: 'links', color: '#f87171', symbol: 'triangle' },
  'link-degraded': { row: 'links', color: '#fbbf24', symbol: 'diamond' },
  'link-up': { row: 'links', color: '#34d399', symbol: 'circle' },
  'route-changed': { row: 'routes', color: '#60a5fa', symbol: 'rect' },
  relayed: { row: 'routes', color: '#c084fc', symbol: 'pin' },
};

/** What an event says, in a line. */
function eventText(e: MeshEvent): string {
  switch (e.kind) {
    case 'link-down':
    case 'link-up':
    case 'link-degraded':
      return `${e.node} — ${e.peer} ${e.kind.slice(5)}${e.why.length ? ` (${e.why.join('; ')})` : ''}`;
    case 'route-changed':
      return `${e.node} → ${e.to ?? 'outside'} (${e.prefixes.join(', ')}): next hop ${e.before ?? 'none'} → ${e.after ?? 'none'}`;
    case 'relayed':
      return `${e.to} reached from ${e.node} through ${e.after}`;
  }
}

/** Buckets with no traffic are zeros, not gaps: a burst shows as a spike, not a lone dot. */
function zeroFilled(points: [number, number][], from: number, to: number, step: number): [number, number][] {
  const at = new Map(points.map(([t, v]) => [t, v]));
  const out: [number, number][] = [];
  for (let t = Math.floor(from / step) * step; t <= to; t += step) out.push([t, at.get(t) ?? 0]);
  return out;
}

function kpi(id: string, label: string, value: string, sub = ''): HTMLElement {
  return h(
    'div',
    { class: 'kpi', id: `kpi-${id}` },
    h('div', { class: 'kpi-label' }, label),
    h('div', { class: 'kpi-value' }, value),
    h('div', { class: 'kpi-sub' }, sub),
  );
}

function selectSlice(kind: Locality | 'all', ip: string): void {
  if (ip === 'other') return;
  const locality = kind === 'all' ? undefined : kind;
  const f = state.filter;
  if (f.ip === ip && f.locality === locality) state.setFilter({ ...f, ip: undefined, locality: undefined });
  else state.setFilter({ ...f, ip, locality });
}

class PieCard {
  readonly el: HTMLElement;
  private readonly chartEl = h('div', { class: 'pie-chart' });
  private readonly legend = h('div', { class: 'pie-legend' });
  private readonly total = h('span', { class: 'muted' });
  private chart: EChartsType | undefined;

  constructor(readonly kind: Locality | 'all') {
    this.el = h(
      'section',
      { class: 'card pie', id: `pie-${kind}`, style: `--c:${LOCALITY_COLOR[kind]}` },
      h('h2', {}, h('span', { class: 'swatch' }), LOCALITY_LABEL[kind], this.total),
      h('div', { class: 'pie-body' }, this.chartEl, this.legend),
    );
  }

  render(unordered: PieSlice[]): void {
    // A fixed order (count, then address; "other" last), so equal slices do not swap places
    // between refreshes under the operator's pointer.
    const slices = [...unordered].sort((a, b) =>
      a.ip === 'other' ? 1 : b.ip === 'other' ? -1 : b.count - a.count || a.ip.localeCompare(b.ip),
    );
    const sum = slices.reduce((s, x) => s + x.count, 0);
    this.el.dataset.slices = JSON.stringify(slices);
    this.total.textContent = sum ? `${fmt.count(sum)} conversation ends` : '';
    if (!sum) {
      dispose(`pie-${this.kind}`);
      this.chart = undefined;
      fill(this.legend);
      fill(this.chartEl, empty('Nothing here', PIE_EMPTY[this.kind]));
      this.el.classList.add('is-empty');
      return;
    }
    this.el.classList.remove('is-empty');
    if (!this.chart || this.chart.isDisposed()) {
      this.chartEl.replaceChildren();
      this.chart = chart(`pie-${this.kind}`, this.chartEl);
      this.chart.on('click', (p) => selectSlice(this.kind, String(p.name)));
    }
    const f = state.filter;
    const selectedHere =
      f.ip && (this.kind === 'all' ? !f.locality : f.locality === this.kind) ? f.ip : undefined;
    this.chart.setOption({
      tooltip: {
        trigger: 'item',
        formatter: (p: { name: string; value: number; percent: number }) =>
          `<b style="font-family:${MONO}">${p.name}</b><br/>${p.value} conversation ends · ${p.percent.toFixed(1)} %`,
      },
      series: [
        {
          type: 'pie',
          radius: ['42%', '78%'],
          center: ['50%', '50%'],
          avoidLabelOverlap: true,
          selectedMode: 'single',
          selectedOffset: 6,
          label: { show: false },
          itemStyle: { borderColor: '#151a22', borderWidth: 2 },
          emphasis: { scale: true, scaleSize: 4 },
          animationDuration: 300,
          animationDurationUpdate: 150,
          data: slices.map((s) => ({
            name: s.ip,
            value: s.count,
            selected: s.ip === selectedHere,
            itemStyle: { color: colorOf(s.ip) },
          })),
        },
      ],
    });
    fill(
      this.legend,
      h(
        'table',
        { class: 'mini' },
        h(
          'tbody',
          {},
          slices.map((s) =>
            h(
              'tr',
              {
                class: `${s.ip === selectedHere ? 'selected' : ''} ${s.ip === 'other' ? '' : 'clickable'}`,
                'data-ip': s.ip,
                title: s.ip === 'other' ? 'addresses beyond the top 12' : 'filter the page by this address',
                onclick: () => selectSlice(this.kind, s.ip),
              },
              h('td', {}, h('span', { class: 'dotc', style: `background:${colorOf(s.ip)}` })),
              h('td', { class: 'mono ip' }, s.ip),
              h('td', { class: 'num count' }, fmt.count(s.count)),
              h('td', { class: 'num muted' }, fmt.percent(s.count, sum)),
            ),
          ),
        ),
      ),
    );
  }
}

export function mountOverview(ctx: PageContext): () => void {
  const kpis = h('section', { class: 'kpis', id: 'kpis' });
  const pies = PIE_KINDS.map((k) => new PieCard(k));
  const tpEl = h('div', { class: 'chart', id: 'throughput-chart' });
  const eventsEl = h('div', { class: 'events-strip', id: 'mesh-events' });
  const tpNote = h('span', { class: 'muted' });
  const talkers = h('div', { class: 'table-wrap', id: 'talkers' });
  const error = h('div', { class: 'error-bar', hidden: true });
  fill(
    ctx.root,
    error,
    kpis,
    h(
      'div',
      { class: 'pies' },
      pies.map((p) => p.el),
    ),
    h(
      'div',
      { class: 'row two' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Throughput per node', tpNote),
        tpEl,
        h('h3', {}, 'Mesh events'),
        eventsEl,
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Top talkers', h('span', { class: 'muted' }, 'egress bytes')),
        talkers,
      ),
    ),
  );
  let tp: EChartsType | undefined;

  let summary: Summary | undefined;
  const renderKpis = () => {
    if (!summary) return;
    const r = live.rates();
    const s = summary;
    const liveSub = (v: string) => (state.live ? v : '');
    fill(
      kpis,
      kpi('conversations', 'Conversations', fmt.count(s.conversations), 'distinct 5-tuples'),
      kpi('flows', 'Flow records', fmt.count(s.flowRecords), liveSub(fmt.rate(r.flows, 'records'))),
      kpi('bytes', 'Traffic', fmt.bytes(s.bytes), liveSub(fmt.bits(r.bits))),
      kpi('http', 'HTTP requests', fmt.count(s.httpRequests), liveSub(fmt.rate(r.requests, 'req'))),
      kpi(
        'errors',
        'HTTP errors',
        fmt.count(s.httpErrors),
        s.httpRequests
          ? `${fmt.percent(s.httpErrors, s.httpRequests)} of requests · 4xx/5xx`
          : '4xx/5xx responses',
      ),
    );
    kpis.querySelector('#kpi-errors')?.classList.toggle('bad', s.httpErrors > 0);
  };

  const renderThroughput = (t: Throughput) => {
    const names = Object.keys(t.series).sort();
    const stepNote = `bit/s, egress, ${fmt.span(t.stepMs)} buckets`;
    tpNote.textContent = stepNote;
    if (!names.length) {
      dispose('throughput');
      tp = undefined;
      fill(
        tpEl,
        empty('No traffic in this window', 'No node reported egress bytes for this window and filter.'),
      );
      return;
    }
    if (!tp || tp.isDisposed()) {
      tpEl.replaceChildren();
      tp = chart('throughput', tpEl);
    }
    // The newest bucket is still filling (records arrive each export interval): leave it out live.
    const cutoff = state.live ? Date.now() - t.stepMs - 1500 : Number.POSITIVE_INFINITY;
    const { from, to } = state.windowParams();
    tp.setOption(
      {
        grid: { left: 64, right: 16, top: 28, bottom: 28 },
        legend: {
          top: 0,
          right: 0,
          textStyle: { color: MUTED },
          icon: 'roundRect',
          itemWidth: 10,
          itemHeight: 4,
        },
        tooltip: {
          trigger: 'axis',
          valueFormatter: (v: number) => fmt.bits(v),
        },
        xAxis: { type: 'time', min: from, max: to, ...AXIS, splitLine: { show: false } },
        yAxis: {
          type: 'value',
          name: 'bit/s',
          ...AXIS,
          axisLabel: { ...AXIS.axisLabel, formatter: (v: number) => fmt.bits(v).replace(' bit/s', '') },
        },
        // Redrawn every second in live mode: merged by id, no entry animation each time.
        animation: false,
        series: names.map((n) => ({
          id: n,
          type: 'line',
          name: n,
          showSymbol: false,
          smooth: false,
          lineStyle: { width: 1.5, color: colorOf(n) },
          itemStyle: { color: colorOf(n) },
          areaStyle: { opacity: 0.08, color: colorOf(n) },
          data: zeroFilled(t.series[n] ?? [], from, Math.min(to, cutoff), t.stepMs),
        })),
      },
      { replaceMerge: ['series'] },
    );
  };

  let eventsChart: EChartsType | undefined;
  const renderEvents = (events: MeshEvent[]) => {
    const { from, to } = state.windowParams();
    const kinds = Object.keys(EVENT_STYLE) as MeshEvent['kind'][];
    eventsEl.dataset.kinds = JSON.stringify(
      Object.fromEntries(kinds.map((k) => [k, events.filter((e) => e.kind === k).length])),
    );
    if (!eventsChart || eventsChart.isDisposed()) eventsChart = chart('mesh-events', eventsEl);
    eventsChart.setOption(
      {
        // Aligned with the throughput chart above: the same time axis and margins.
        grid: { left: 64, right: 16, top: 4, bottom: 20 },
        tooltip: {
          trigger: 'item',
          formatter: (p: { data: { text: string; value: [number, string] } }) =>
            `${fmt.time(p.data.value[0])} · ${p.data.text}`,
        },
        xAxis: { type: 'time', min: from, max: to, ...AXIS, splitLine: { show: false } },
        yAxis: {
          type: 'category',
          data: ['links', 'routes'],
          ...AXIS,
          splitLine: { show: true, lineStyle: { color: '#1c222c' } },
        },
        animation: false,
        series: kinds.map((k) => ({
          id: k,
          name: k,
          type: 'scatter',
          symbol: EVENT_STYLE[k].symbol,
          symbolSize: 10,
          itemStyle: { color: EVENT_STYLE[k].color },
          data: events
            .filter((e) => e.kind === k)
            .map((e) => ({ value: [e.timeMs, EVENT_STYLE[k].row], text: eventText(e) })),
        })),
      },
      { replaceMerge: ['series'] },
    );
  };

  const renderTalkers = (rows: Talker[]) => {
    if (!rows.length) {
      fill(talkers, empty('No talkers', 'No egress traffic matched this window and filter.'));
      return;
    }
    const max = rows[0]?.bytes ?? 1;
    fill(
      talkers,
      h(
        'table',
        { class: 'grid' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'source → destination'),
            h('th', {}, 'locality'),
            h('th', { class: 'num' }, 'bytes'),
            h('th', { class: 'num' }, 'packets'),
            h('th', { class: 'num' }, 'conv.'),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((r) =>
            h(
              'tr',
              {},
              h(
                'td',
                { class: 'mono' },
                h('div', {
                  class: 'bar',
                  style: `width:${(100 * r.bytes) / max}%;--c:${LOCALITY_COLOR[r.locality]}`,
                }),
                `${r.src} → ${r.dst}`,
              ),
              h('td', {}, h('span', { class: `badge ${r.locality}` }, r.locality)),
              h('td', { class: 'num' }, fmt.bytes(r.bytes)),
              h('td', { class: 'num' }, fmt.count(r.packets)),
              h('td', { class: 'num' }, fmt.count(r.conversations)),
            ),
          ),
        ),
      ),
    );
  };

  const stop = refresher(
    async () => {
      const { from, to } = state.windowParams();
      const step = Math.max(1000, Math.round((to - from) / 150 / 1000) * 1000);
      const [s, p, t, tk, ev] = await Promise.all([
        api<Summary>(`summary${state.params()}`),
        api<Pies>(`pies${state.params()}`),
        api<Throughput>(`throughput${state.params({ step })}`),
        api<Talker[]>(`talkers${state.params({ limit: 12 })}`),
        api<MeshEvents>(`mesh/events${state.params({ limit: 500 }, false)}`),
      ]);
      error.hidden = true;
      summary = s;
      renderKpis();
      for (const card of pies) card.render(p[card.kind]);
      renderThroughput(t);
      renderEvents(ev.events);
      renderTalkers(tk);
    },
    {
      everyMs: 1000,
      onError: (err) => {
        error.hidden = false;
        error.textContent = `The tower did not answer: ${err.message}`;
      },
    },
  );
  const offLive = live.on(renderKpis);
  return () => {
    stop();
    offLive();
  };
}
