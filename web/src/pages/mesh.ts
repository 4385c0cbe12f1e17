/**
 * Mesh: the radio links as the nodes measure them (GET /api/v1/mesh). A schematic on the
 * nodes' positions — links coloured by state, thicker the busier, labelled with RTT and
 * loss, a down link dashed — and a table with what each end saw and why a link is not up.
 */
import type { MeshLink, MeshView } from '../../../src/tower/api/mesh-types.js';
import { api } from '../api.js';
import { chart } from '../charts.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { MUTED, TEXT } from '../theme.js';

const STATE_COLOR: Record<MeshLink['state'], string> = {
  up: '#34d399',
  degraded: '#fbbf24',
  down: '#f87171',
};

const ms = (v: number | null) => (v === null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
const pct = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} %`;

function draw(el: HTMLElement, view: MeshView): void {
  const c = chart('mesh', el);
  const placed = view.nodes.filter((n) => n.position);
  const known = new Set(placed.map((n) => n.name));
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
          itemStyle: n.connected ? {} : { borderColor: '#6b7280' },
        })),
        links: view.links
          .filter((l) => known.has(l.a) && known.has(l.b))
          .map((l) => ({
            source: l.a,
            target: l.b,
            label:
              l.state === 'down' ? 'down' : `${ms(l.rttMs)} · ${pct(Math.max(l.lossPct.ab, l.lossPct.ba))}`,
            lineStyle: {
              color: STATE_COLOR[l.state],
              width: 2 + Math.min(8, l.utilization * 8),
              type: l.state === 'down' ? 'dashed' : 'solid',
              opacity: 0.9,
            },
          })),
      },
    ],
  });
}

function row(l: MeshLink): HTMLElement {
  const why = l.ends.flatMap((e) => e.why.map((w) => `${e.node}: ${w}`));
  return h(
    'tr',
    { 'data-link': `${l.a}-${l.b}`, 'data-state': l.state },
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

export function mountMesh(ctx: PageContext): () => void {
  const error = h('div', { class: 'error-bar', hidden: true });
  const summary = h('div', { class: 'muted', id: 'mesh-summary' });
  const graph = h('div', { class: 'panel chart', id: 'mesh-graph', style: 'height: 420px' });
  const body = h('tbody', { id: 'mesh-links' });
  const table = h(
    'table',
    { class: 'grid' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...[
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
        ].map((t) => h('th', {}, t)),
      ),
    ),
    body,
  );
  const content = h('div', {}, graph, h('div', { class: 'panel' }, table));
  fill(ctx.root, error, h('div', { class: 'page-head' }, h('h1', {}, 'Mesh'), summary), content);
  return refresher(
    async () => {
      const view = await api<MeshView>('mesh');
      error.hidden = true;
      if (!view.links.length) {
        summary.textContent = '';
        fill(
          content,
          empty(
            'No radio link reported',
            'Nodes report the uplinks that have a `mesh:` section in node.yaml (docs/mesh.md).',
          ),
        );
        return;
      }
      if (!content.contains(graph)) fill(content, graph, h('div', { class: 'panel' }, table));
      const count = (s: MeshLink['state']) => view.links.filter((l) => l.state === s).length;
      summary.textContent = `${view.links.length} radio links: ${count('up')} up, ${count('degraded')} degraded, ${count('down')} down`;
      draw(graph, view);
      body.replaceChildren(...view.links.map(row));
    },
    {
      everyMs: 2000,
      alsoWhenNotLive: true,
      onError: (err) => {
        error.hidden = false;
        error.textContent = `The tower did not answer: ${err.message}`;
      },
    },
  );
}
