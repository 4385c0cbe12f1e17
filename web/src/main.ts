/**
 * The dashboard's shell: login, the bar (pages, filter, time window, live status, user),
 * and the router (#/overview, #/map, #/mesh, #/services, #/http, #/nodes, #/qos). Each page is a module with mount()
 * returning its unmount; pages redraw on window/filter changes and on the live feed.
 */
import './style.css';
import { api, type User, whenUnauthorized } from './api.js';
import { disposeAll } from './charts.js';
import { empty, fill, h } from './dom.js';
import { ago, localInput, span } from './format.js';
import { live } from './live.js';
import { mountHttp } from './pages/http.js';
import { mountMap } from './pages/map/mount.js';
import { mountMesh } from './pages/mesh.js';
import { mountNodes } from './pages/nodes.js';
import { mountOverview } from './pages/overview.js';
import { mountQos } from './pages/qos.js';
import { mountServices } from './pages/services.js';
import { state, type WindowMode } from './state.js';
import { LOCALITY_COLOR, LOCALITY_LABEL } from './theme.js';

export interface PageContext {
  user: User;
  root: HTMLElement;
}
type Mount = (ctx: PageContext) => () => void;

const PAGES: { id: string; title: string; mount: Mount }[] = [
  { id: 'overview', title: 'Overview', mount: mountOverview },
  { id: 'map', title: 'Map', mount: mountMap },
  { id: 'mesh', title: 'Mesh', mount: mountMesh },
  { id: 'services', title: 'Services', mount: mountServices },
  { id: 'http', title: 'HTTP', mount: mountHttp },
  { id: 'nodes', title: 'Nodes', mount: mountNodes },
  { id: 'qos', title: 'QoS', mount: mountQos },
];

const app = document.getElementById('app') as HTMLElement;

function showLogin(message = ''): void {
  live.close();
  disposeAll();
  const input = h('input', {
    type: 'password',
    id: 'token',
    name: 'token',
    placeholder: 'paste your access token',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('div', { class: 'login-error', id: 'login-error' }, message);
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        error.textContent = '';
        try {
          const user = await api<User>('login', {
            method: 'POST',
            body: JSON.stringify({ token: input.value }),
          });
          start(user);
        } catch (err) {
          error.textContent = (err as Error).message;
        }
      },
    },
    h('div', { class: 'brand big' }, h('span', { class: 'brand-mark' }), 'tacmesh ', h('b', {}, 'tower')),
    h('label', { for: 'token' }, 'Access token'),
    input,
    h('button', { type: 'submit', class: 'primary login-submit' }, 'Sign in'),
    error,
    h(
      'p',
      { class: 'hint' },
      'Tokens are made on the tower with ',
      h('code', {}, 'tacmesh tower token --file <tokens.yaml> --name <you> --role viewer|operator'),
      '. Signing in opens a 12-hour session, kept in a cookie this page cannot read; the token itself is not kept.',
    ),
  );
  fill(app, h('div', { class: 'login-wrap' }, form));
  input.focus();
}

function windowPicker(): HTMLElement {
  const wrap = h('div', { class: 'window', id: 'window-picker' });
  const modes: [WindowMode, string][] = [
    ['live', 'Live'],
    ['5m', '5 min'],
    ['1h', '1 h'],
    ['24h', '24 h'],
    ['custom', 'Custom'],
  ];
  const from = h('input', { type: 'datetime-local', id: 'custom-from', 'aria-label': 'from' });
  const to = h('input', { type: 'datetime-local', id: 'custom-to', 'aria-label': 'to' });
  const custom = h(
    'form',
    {
      class: 'custom',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const f = Date.parse(from.value);
        const t = Date.parse(to.value);
        if (Number.isFinite(f) && Number.isFinite(t) && f < t) state.setCustom(f, t);
      },
    },
    from,
    '→',
    to,
    h('button', { type: 'submit' }, 'Show'),
  );
  const render = () => {
    const w = state.window;
    fill(
      wrap,
      h(
        'div',
        { class: 'seg' },
        modes.map(([m, label]) =>
          h(
            'button',
            {
              type: 'button',
              'data-mode': m,
              class: w.mode === m ? 'on' : '',
              title: m === 'live' ? 'the last 5 minutes, following the live feed' : '',
              onclick: () => {
                if (m === 'custom') {
                  from.value = localInput(w.fromMs);
                  to.value = localInput(w.toMs);
                  state.setCustom(w.fromMs, w.toMs);
                } else state.setMode(m);
              },
            },
            m === 'live' ? h('span', { class: 'pulse' }) : null,
            label,
          ),
        ),
      ),
      w.mode === 'custom' ? custom : null,
      w.mode !== 'live' && w.mode !== 'custom'
        ? h(
            'button',
            {
              type: 'button',
              class: 'ghost',
              title: 'move the window to end now',
              onclick: () => state.setMode(w.mode as Exclude<WindowMode, 'custom'>),
            },
            '↻',
          )
        : null,
    );
  };
  state.on(render);
  render();
  return wrap;
}

function filterChip(): HTMLElement {
  const el = h('div', { class: 'filter', id: 'filter' });
  const render = () => {
    const f = state.filter;
    if (!f.ip && !f.locality && !f.node) {
      fill(el);
      return;
    }
    fill(
      el,
      h('span', { class: 'muted' }, 'filter'),
      f.locality
        ? h(
            'span',
            { class: 'chip', style: `--c:${LOCALITY_COLOR[f.locality]}` },
            LOCALITY_LABEL[f.locality].toLowerCase(),
          )
        : null,
      f.ip ? h('span', { class: 'chip mono' }, f.ip) : null,
      f.node ? h('span', { class: 'chip' }, `node ${f.node}`) : null,
      h(
        'button',
        { type: 'button', class: 'ghost', id: 'clear-filter', onclick: () => state.setFilter({}) },
        '✕ clear',
      ),
    );
  };
  state.on(render);
  render();
  return el;
}

function liveStatus(): HTMLElement {
  const el = h('div', { class: 'live-status', id: 'live-status' });
  const render = () => {
    const fresh = live.connected && Date.now() - live.lastUpdateMs < 3000;
    el.className = `live-status ${fresh ? 'ok' : live.connected ? 'stale' : 'down'}`;
    const w = state.window;
    const what = state.live
      ? fresh
        ? `live · ${ago(live.lastUpdateMs)}`
        : live.connected
          ? 'live · waiting for data'
          : 'live feed disconnected'
      : w.mode === 'custom'
        ? `${span(w.toMs - w.fromMs)} window`
        : `snapshot ${ago(w.toMs)}`;
    fill(el, h('span', { class: 'dot' }), what);
  };
  setInterval(render, 500);
  let updates = 0;
  live.on(() => {
    el.dataset.updates = String(++updates);
  });
  live.onStatus(render);
  state.on(render);
  render();
  return el;
}

let unmount: (() => void) | undefined;

function route(user: User, main: HTMLElement, nav: HTMLElement): void {
  const id = location.hash.replace(/^#\/?/, '') || 'overview';
  const page = PAGES.find((p) => p.id === id) ?? PAGES[0];
  if (!page) return;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('on', a.dataset.page === page.id);
  unmount?.();
  disposeAll();
  main.replaceChildren();
  main.dataset.page = page.id;
  document.title = `${page.title} · tacmesh tower`;
  try {
    unmount = page.mount({ user, root: main });
  } catch (err) {
    fill(main, empty('This page failed to draw', (err as Error).message));
  }
}

function start(user: User): void {
  const nav = h(
    'nav',
    {},
    PAGES.map((p) => h('a', { href: `#/${p.id}`, 'data-page': p.id }, p.title)),
  );
  const main = h('main', { id: 'page' });
  const bar = h(
    'header',
    {},
    h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }), 'tacmesh ', h('b', {}, 'tower')),
    nav,
    filterChip(),
    h('div', { class: 'spacer' }),
    windowPicker(),
    liveStatus(),
    h(
      'div',
      { class: 'user', id: 'user' },
      h('span', {}, user.name),
      h('span', { class: `role ${user.role}` }, user.role),
      h(
        'button',
        {
          type: 'button',
          class: 'ghost',
          onclick: async () => {
            await api('logout', { method: 'POST' }).catch(() => undefined);
            showLogin('Signed out.');
          },
        },
        'sign out',
      ),
    ),
  );
  fill(app, bar, main);
  live.open(state.filter);
  let lastFilter = JSON.stringify(state.filter);
  state.on(() => {
    const f = JSON.stringify(state.filter);
    if (f !== lastFilter) {
      lastFilter = f;
      live.open(state.filter);
    }
  });
  window.onhashchange = () => route(user, main, nav);
  route(user, main, nav);
}

whenUnauthorized(() => showLogin('Your session ended: sign in again.'));
api<User>('whoami').then(start, () => showLogin());
