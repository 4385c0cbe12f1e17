/**
 * HTTP: the requests the nodes' eBPF programs saw (method, URL, host, status, node, time),
 * newest first, with filters, and the breakdown of response codes. In live mode new request
 * lines come from the live feed the moment the tower stores them; the list is re-read from
 * the API every two seconds for the statuses of responses that came later.
 */
import type { EChartsType } from 'echarts/core';
import { api, type HttpRequest, type NodeInfo, type StatusCounts } from '../api.js';
import { AXIS, chart, dispose } from '../charts.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import { type LiveRequest, live } from '../live.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { state } from '../state.js';
import { statusColor } from '../theme.js';

const LIMIT = 200;

interface Filters {
  url: string;
  method: string;
  status: string;
}

const keyOf = (r: HttpRequest | LiveRequest) =>
  `${r.time} ${r.src} ${r.dst}:${r.dstPort} ${r.method} ${r.url}`;

function row(r: HttpRequest | LiveRequest, fresh = false): HTMLElement {
  const status = r.status;
  return h(
    'tr',
    { class: fresh ? 'fresh' : '', 'data-url': r.url, 'data-key': keyOf(r) },
    h('td', { class: 'mono muted' }, fmt.time(r.time)),
    h('td', { title: 'iface' in r ? `seen on ${r.iface}` : '' }, r.node),
    h('td', { class: 'mono' }, h('span', { class: 'method' }, r.method)),
    h('td', { class: 'mono url', title: r.url }, r.url),
    h('td', { class: 'mono muted' }, r.host || '–'),
    h(
      'td',
      { class: 'num' },
      status === null
        ? h('span', { class: 'muted', title: 'no response seen (yet)' }, '…')
        : h('span', { class: 'status', style: `--c:${statusColor(status)}` }, status),
    ),
    h(
      'td',
      { class: 'num muted' },
      'latencyMs' in r && r.latencyMs !== null && r.latencyMs !== undefined ? `${r.latencyMs} ms` : '',
    ),
    h('td', { class: 'mono muted' }, `${r.src} → ${r.dst}:${r.dstPort}`),
    h('td', {}, h('span', { class: `badge ${r.locality}` }, r.locality)),
  );
}

export function mountHttp(ctx: PageContext): () => void {
  const f: Filters = { url: '', method: '', status: '' };
  const urlIn = h('input', { type: 'search', id: 'http-url', placeholder: 'URL contains…' });
  const methodIn = h(
    'select',
    { id: 'http-method' },
    ['', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'].map((m) =>
      h('option', { value: m }, m || 'any method'),
    ),
  );
  const statusIn = h('input', {
    type: 'number',
    id: 'http-status',
    placeholder: 'status',
    min: 100,
    max: 599,
  });
  const nodeIn = h('select', { id: 'http-node' }, h('option', { value: '' }, 'any node'));
  const tbody = h('tbody', { id: 'http-rows' });
  const tableWrap = h('div', { class: 'table-wrap tall' });
  const countNote = h('span', { class: 'muted' });
  const statusEl = h('div', { class: 'chart short', id: 'status-chart' });
  const statusTable = h('div', { id: 'status-table' });
  const error = h('div', { class: 'error-bar', hidden: true });
  let statusChart: EChartsType | undefined;

  const apply = () => {
    f.url = urlIn.value.trim();
    f.method = methodIn.value;
    f.status = statusIn.value;
    live.setUrl(f.url || undefined);
    const node = nodeIn.value || undefined;
    if (node !== state.filter.node) state.setFilter({ ...state.filter, node });
    else void reload();
  };
  let debounce: ReturnType<typeof setTimeout> | undefined;
  urlIn.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(apply, 250);
  });
  methodIn.addEventListener('change', apply);
  statusIn.addEventListener('change', apply);
  nodeIn.addEventListener('change', apply);

  fill(
    ctx.root,
    error,
    h(
      'div',
      { class: 'row http' },
      h(
        'section',
        { class: 'card grow' },
        h('h2', {}, 'Recent requests', countNote),
        h('div', { class: 'filters' }, urlIn, methodIn, statusIn, nodeIn),
        tableWrap,
      ),
      h(
        'section',
        { class: 'card side' },
        h('h2', {}, 'Response codes', h('span', { class: 'muted' }, 'responses in window')),
        statusEl,
        statusTable,
      ),
    ),
  );

  const showRows = (rows: HttpRequest[]) => {
    countNote.textContent = rows.length >= LIMIT ? `newest ${LIMIT}` : `${rows.length}`;
    if (!rows.length) {
      fill(
        tableWrap,
        empty(
          'No HTTP requests',
          f.url || f.method || f.status || state.filter.ip || state.filter.node
            ? 'None matched these filters in this window.'
            : 'No node saw an HTTP request line in this window (is L7 monitoring on for the nodes? see Nodes).',
        ),
      );
      return;
    }
    fill(
      tbody,
      rows.map((r) => row(r)),
    );
    if (!tableWrap.contains(tbody))
      fill(tableWrap, h('table', { class: 'grid', id: 'http-table' }, head(), tbody));
  };
  const head = () =>
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        [
          'time',
          'node',
          'method',
          'URL',
          'host',
          'status',
          'latency',
          'source → destination',
          'locality',
        ].map((c) => h('th', { class: c === 'status' || c === 'latency' ? 'num' : '' }, c)),
      ),
    );

  const showStatus = (codes: StatusCounts) => {
    const total = codes.reduce((sum, c) => sum + c.count, 0);
    if (!total) {
      dispose('http-status');
      statusChart = undefined;
      fill(statusEl, empty('No responses', 'No HTTP response line was seen in this window.'));
      fill(statusTable);
      return;
    }
    if (!statusChart || statusChart.isDisposed()) {
      statusEl.replaceChildren();
      statusChart = chart('http-status', statusEl);
      statusChart.on('click', (p) => {
        statusIn.value = String(p.name);
        apply();
      });
    }
    statusChart.setOption({
      grid: { left: 48, right: 12, top: 12, bottom: 36 },
      tooltip: {
        trigger: 'item',
        formatter: (p: { name: string; value: number }) => `${p.name}: ${p.value} responses`,
      },
      xAxis: {
        type: 'category',
        name: 'status',
        nameLocation: 'middle',
        nameGap: 24,
        data: codes.map((c) => String(c.status)),
        ...AXIS,
      },
      yAxis: { type: 'value', name: 'responses', minInterval: 1, ...AXIS },
      series: [
        {
          type: 'bar',
          barMaxWidth: 32,
          data: codes.map((c) => ({ value: c.count, itemStyle: { color: statusColor(c.status) } })),
        },
      ],
    });
    const classes = [2, 3, 4, 5].map((k) => ({
      k,
      n: codes.filter((c) => Math.floor(c.status / 100) === k).reduce((s, c) => s + c.count, 0),
    }));
    fill(
      statusTable,
      h(
        'table',
        { class: 'mini' },
        h(
          'tbody',
          {},
          classes.map(({ k, n }) =>
            h(
              'tr',
              {},
              h('td', {}, h('span', { class: 'status', style: `--c:${statusColor(k * 100)}` }, `${k}xx`)),
              h('td', { class: 'num' }, fmt.count(n)),
              h('td', { class: 'num muted' }, fmt.percent(n, total)),
            ),
          ),
        ),
      ),
    );
  };

  const reload = async () => {
    const params = state.params({ url: f.url, method: f.method, status: f.status, limit: LIMIT });
    const [rows, codes, nodes] = await Promise.all([
      api<HttpRequest[]>(`http${params}`),
      api<StatusCounts>(`http/status${state.params()}`),
      api<NodeInfo[]>('nodes'),
    ]);
    error.hidden = true;
    const have = new Set([...nodeIn.options].map((o) => o.value));
    for (const n of nodes) if (!have.has(n.name)) nodeIn.append(h('option', { value: n.name }, n.name));
    nodeIn.value = state.filter.node ?? '';
    showRows(rows);
    showStatus(codes);
  };

  const stop = refresher(reload, {
    everyMs: 2000,
    onError: (err) => {
      error.hidden = false;
      error.textContent = `The tower did not answer: ${err.message}`;
    },
  });

  // New request lines from the live feed, at once (the feed is already filtered by ip/locality/node).
  const offLive = live.on((u) => {
    if (!state.live || !u.recent.length) return;
    const matching = u.recent.filter(
      (r) =>
        (!f.url || r.url.toLowerCase().includes(f.url.toLowerCase())) &&
        (!f.method || r.method === f.method) &&
        (!f.status || r.status === Number(f.status)),
    );
    if (!matching.length) return;
    if (!tableWrap.contains(tbody))
      fill(tableWrap, h('table', { class: 'grid', id: 'http-table' }, head(), tbody));
    // The API's answer may already hold a line the feed brings a moment later.
    const shown = new Set([...tbody.children].map((tr) => (tr as HTMLElement).dataset.key));
    const fresh = matching.filter((r) => !shown.has(keyOf(r)));
    tbody.prepend(...fresh.reverse().map((r) => row(r, true)));
    while (tbody.children.length > LIMIT) tbody.lastElementChild?.remove();
    countNote.textContent = tbody.children.length >= LIMIT ? `newest ${LIMIT}` : `${tbody.children.length}`;
  });
  return () => {
    stop();
    offLive();
    clearTimeout(debounce);
    live.setUrl(undefined);
  };
}
