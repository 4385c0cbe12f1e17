/**
 * Nodes: the one-way link to headquarters when the tower forwards its records (forward-card.ts);
 * each node's connection and health, slices, interfaces, monitoring settings
 * (editable by operators: L3/L4/L7, HTTP sampling, export interval — pushed to the node at
 * once through PUT /nodes/:name/monitoring, and shown as applied when the node reports
 * the new version), last seen, and what its agent reported (drift and repair).
 */
import { api, type ForwardView, type MonitorSettings, type NodeInfo } from '../api.js';
import { empty, fill, h } from '../dom.js';
import * as fmt from '../format.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { ForwardCard } from './forward-card.js';

type Editable = Omit<MonitorSettings, 'version'>;

/** A node is stale when it has not been heard from for this long. */
const STALE_MS = 15_000;

function health(n: NodeInfo): { cls: string; text: string } {
  if (!n.connected) return { cls: 'down', text: 'disconnected' };
  if (Date.now() - n.lastSeen > STALE_MS) return { cls: 'stale', text: 'silent' };
  const h = n.status?.health ?? 'unknown';
  return { cls: h === 'ok' ? 'ok' : 'stale', text: h };
}

function kv(label: string, value: Node | string): HTMLElement {
  return h('div', { class: 'kv' }, h('span', { class: 'k' }, label), h('span', { class: 'v' }, value));
}

class MonitorForm {
  readonly el: HTMLFormElement;
  private readonly inputs: {
    l3: HTMLInputElement;
    l4: HTMLInputElement;
    l7: HTMLInputElement;
    sample: HTMLInputElement;
    intervalMs: HTMLInputElement;
  };
  private readonly state = h('div', { class: 'apply-state' });
  private dirty = false;
  private version = 0;

  constructor(
    private readonly node: string,
    operator: boolean,
  ) {
    const toggle = (k: string, label: string, title: string) =>
      h('input', { type: 'checkbox', name: k, 'aria-label': label, title, disabled: !operator });
    this.inputs = {
      l3: toggle('l3', 'L3', 'addresses'),
      l4: toggle('l4', 'L4', 'ports'),
      l7: toggle('l7', 'L7', 'HTTP request and response lines'),
      sample: h('input', {
        type: 'number',
        name: 'sample',
        min: 1,
        max: 1_000_000,
        step: 1,
        disabled: !operator,
      }),
      intervalMs: h('input', {
        type: 'number',
        name: 'intervalMs',
        min: 100,
        max: 60_000,
        step: 100,
        disabled: !operator,
      }),
    };
    const label = (text: string, input: HTMLInputElement, unit = '') =>
      h('label', {}, input, h('span', {}, text), unit ? h('span', { class: 'muted' }, unit) : null);
    this.el = h(
      'form',
      {
        class: 'monitor-form',
        'data-node': node,
        onsubmit: (e: Event) => {
          e.preventDefault();
          void this.submit();
        },
        oninput: () => {
          this.dirty = true;
        },
      },
      h(
        'div',
        { class: 'toggles' },
        label('L3', this.inputs.l3),
        label('L4', this.inputs.l4),
        label('L7 (HTTP)', this.inputs.l7),
      ),
      h(
        'div',
        { class: 'numbers' },
        h('label', {}, h('span', {}, 'HTTP sampling: 1 in'), this.inputs.sample),
        h(
          'label',
          {},
          h('span', {}, 'export every'),
          this.inputs.intervalMs,
          h('span', { class: 'muted' }, 'ms'),
        ),
      ),
      h(
        'div',
        { class: 'actions' },
        operator
          ? h('button', { type: 'submit', class: 'primary small' }, 'Apply')
          : h('span', { class: 'muted' }, 'operators can change these'),
        this.state,
      ),
    );
  }

  update(n: NodeInfo): void {
    const m = n.monitor;
    if (!this.dirty || m.version !== this.version) {
      this.inputs.l3.checked = m.l3;
      this.inputs.l4.checked = m.l4;
      this.inputs.l7.checked = m.l7;
      this.inputs.sample.value = String(m.sample);
      this.inputs.intervalMs.value = String(m.intervalMs);
      this.version = m.version;
      this.dirty = false;
    }
    const applied = n.status?.monitorVersion ?? 0;
    this.el.dataset.version = String(m.version);
    this.el.dataset.applied = String(applied);
    fill(
      this.state,
      n.monitorApplied
        ? h('span', { class: 'ok-text' }, `✓ applied by the node (v${m.version})`)
        : n.connected
          ? h('span', { class: 'warn-text' }, `sent v${m.version}; node reports v${applied}…`)
          : h('span', { class: 'muted' }, `v${m.version} is sent when the node reconnects`),
    );
  }

  private async submit(): Promise<void> {
    const change: Editable = {
      l3: this.inputs.l3.checked,
      l4: this.inputs.l4.checked,
      l7: this.inputs.l7.checked,
      sample: Number(this.inputs.sample.value),
      intervalMs: Number(this.inputs.intervalMs.value),
    };
    try {
      const s = await api<MonitorSettings>(`nodes/${encodeURIComponent(this.node)}/monitoring`, {
        method: 'PUT',
        body: JSON.stringify(change),
      });
      this.version = s.version;
      this.dirty = false;
      fill(this.state, h('span', { class: 'warn-text' }, `sent v${s.version}; waiting for the node…`));
    } catch (err) {
      fill(this.state, h('span', { class: 'bad-text' }, (err as Error).message));
    }
  }
}

class NodeCard {
  readonly el: HTMLElement;
  private readonly head = h('h2', {});
  private readonly facts = h('div', { class: 'facts' });
  private readonly slices = h('div', {});
  private readonly ifaces = h('div', {});
  private readonly events = h('div', { class: 'events' });
  private readonly form: MonitorForm;

  constructor(name: string, operator: boolean) {
    this.form = new MonitorForm(name, operator);
    this.el = h(
      'section',
      { class: 'card node', 'data-node': name },
      this.head,
      h(
        'div',
        { class: 'node-grid' },
        h('div', {}, h('h3', {}, 'Node'), this.facts),
        h('div', {}, h('h3', {}, 'Slices'), this.slices, h('h3', {}, 'Interfaces'), this.ifaces),
        h('div', {}, h('h3', {}, 'Monitoring'), this.form.el),
        h('div', { class: 'span2' }, h('h3', {}, 'Agent events'), this.events),
      ),
    );
  }

  update(n: NodeInfo): void {
    const hl = health(n);
    fill(
      this.head,
      h('span', { class: `health ${hl.cls}` }, h('span', { class: 'dot' }), hl.text),
      n.name,
      ...(n.connected && n.via
        ? [
            h(
              'span',
              {
                class: 'via warn-text',
                title: 'its management link is gone: through a neighbour over the mesh',
              },
              `via ${n.via}`,
            ),
          ]
        : []),
      h('span', { class: 'muted' }, `last seen ${fmt.ago(n.lastSeen)}`),
    );
    fill(
      this.facts,
      kv('tower link', !n.connected ? '–' : n.via ? `via ${n.via}, over the mesh` : 'direct'),
      kv('subnets', n.subnets.join(', ') || '–'),
      kv(
        'position',
        n.position ? `${n.position.lat.toFixed(4)}, ${n.position.lon.toFixed(4)}` : 'not given (--position)',
      ),
      kv('records stored', fmt.count(n.recordsStored)),
      kv('software', n.software || '–'),
      kv('clock skew', `${n.clockSkewMs} ms`),
      kv('first seen', fmt.time(n.firstSeen)),
    );
    fill(
      this.slices,
      n.slices.length
        ? h(
            'table',
            { class: 'grid' },
            h(
              'tbody',
              {},
              n.slices.map((s) =>
                h(
                  'tr',
                  {},
                  h('td', {}, s.name),
                  h('td', { class: 'mono' }, s.bridge),
                  h('td', { class: 'mono muted' }, s.subnets.join(', ')),
                ),
              ),
            ),
          )
        : h('div', { class: 'muted small' }, 'No slices reported (the node agent reports them).'),
    );
    const ifs = n.status?.interfaces ?? [];
    fill(
      this.ifaces,
      ifs.length
        ? h(
            'div',
            { class: 'ifaces' },
            ifs.map((i) =>
              h(
                'span',
                {
                  class: `iface ${i.up ? 'up' : 'down'}`,
                  title: `${i.up ? 'up' : 'down'}, ${i.monitored ? 'monitored' : 'not monitored'}`,
                },
                i.name,
                i.monitored ? null : h('span', { class: 'muted' }, ' (off)'),
              ),
            ),
          )
        : h('div', { class: 'muted small' }, 'No status report yet (nodes report every 5 s).'),
    );
    this.form.update(n);
    const events = [...n.events].reverse().slice(0, 12);
    fill(
      this.events,
      events.length
        ? h(
            'table',
            { class: 'grid' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['time', 'entity', 'problem', 'cause', 'action', 'took', 'result'].map((c) =>
                  h('th', { class: c === 'took' ? 'num' : '' }, c),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              events.map((e) =>
                h(
                  'tr',
                  { class: 'event' },
                  h('td', { class: 'mono muted' }, fmt.time(Number(e.timeMs))),
                  h('td', { class: 'mono' }, e.entity),
                  h('td', {}, e.problem),
                  h('td', { class: 'muted' }, e.cause || '–'),
                  h('td', {}, e.action),
                  h('td', { class: 'num muted' }, e.tookMs ? `${Number(e.tookMs)} ms` : ''),
                  h(
                    'td',
                    { title: e.error || '' },
                    h(
                      'span',
                      { class: e.ok ? 'ok-text' : 'bad-text' },
                      e.ok ? 'repaired' : `failed${e.error ? `: ${e.error}` : ''}`,
                    ),
                  ),
                ),
              ),
            ),
          )
        : h('div', { class: 'muted small' }, 'No agent events: nothing drifted or needed repair.'),
    );
  }
}

export function mountNodes(ctx: PageContext): () => void {
  const list = h('div', { class: 'nodes', id: 'nodes' });
  const error = h('div', { class: 'error-bar', hidden: true });
  const summary = h('div', { class: 'muted', id: 'nodes-summary' });
  const forward = new ForwardCard();
  fill(ctx.root, error, h('div', { class: 'page-head' }, h('h1', {}, 'Nodes'), summary), forward.el, list);
  const cards = new Map<string, NodeCard>();
  const operator = ctx.user.role === 'operator';
  const stop = refresher(
    async () => {
      const [nodes, fwd] = await Promise.all([api<NodeInfo[]>('nodes'), api<ForwardView | null>('forward')]);
      error.hidden = true;
      forward.update(fwd);
      const up = nodes.filter((n) => n.connected).length;
      summary.textContent = `${up} of ${nodes.length} connected${operator ? '' : ' · read-only (viewer)'}`;
      if (!nodes.length) {
        cards.clear();
        fill(
          list,
          empty(
            'No node has connected to this tower',
            'Start one with `tacmesh node run --name <n> --tower <host:port> ...` and a certificate from this tower’s CA.',
          ),
        );
        return;
      }
      if (cards.size === 0) list.replaceChildren();
      for (const n of nodes.sort((a, b) => a.name.localeCompare(b.name))) {
        let card = cards.get(n.name);
        if (!card) {
          card = new NodeCard(n.name, operator);
          cards.set(n.name, card);
          list.append(card.el);
        }
        card.update(n);
      }
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
  return stop;
}
