/**
 * The Nodes page's card for the one-way link to headquarters (GET /forward): the tower's
 * flow records forwarded as IPFIX, and the link's health as the diode's sender knows it —
 * what it sent, since nothing comes back over a diode to say more.
 */
import type { DiodeLinkState, ForwardView } from '../api.js';
import { fill, h } from '../dom.js';
import * as fmt from '../format.js';

const LOOK: Record<DiodeLinkState, { cls: string; text: string }> = {
  sending: { cls: 'ok', text: 'sending' },
  dropping: { cls: 'stale', text: 'dropping records' },
  stalled: { cls: 'down', text: 'stalled' },
  unreachable: { cls: 'down', text: 'sender unreachable' },
  starting: { cls: 'stale', text: 'starting' },
};

function kv(label: string, value: Node | string): HTMLElement {
  return h('div', { class: 'kv' }, h('span', { class: 'k' }, label), h('span', { class: 'v' }, value));
}

export class ForwardCard {
  readonly el = h('section', { class: 'card node', id: 'forward', hidden: true });

  update(v: ForwardView | null): void {
    this.el.hidden = !v;
    if (!v) return;
    const d = v.diode;
    const look = d ? LOOK[d.state] : { cls: 'stale', text: 'no diode metrics configured' };
    const s = d?.sender;
    const per = d?.perSecond;
    this.el.dataset.state = d?.state ?? 'none';
    fill(
      this.el,
      h(
        'h2',
        {},
        h('span', { class: `health ${look.cls}` }, h('span', { class: 'dot' }), look.text),
        `One-way link to ${v.label}`,
        h(
          'span',
          { class: 'muted' },
          'as its sender knows it: what it sent (nothing comes back over a diode)',
        ),
      ),
      h(
        'div',
        { class: 'node-grid' },
        h(
          'div',
          {},
          h('h3', {}, 'Records forwarded'),
          kv('IPFIX to', v.ipfix?.collector ?? '–'),
          kv('flow records', fmt.count(v.ipfix?.records ?? 0)),
          kv('messages', fmt.count(v.ipfix?.messages ?? 0)),
          kv('last', v.ipfix?.lastForwardMs ? fmt.ago(v.ipfix.lastForwardMs) : 'none yet'),
        ),
        h(
          'div',
          {},
          h('h3', {}, 'Diode sender'),
          kv('pace', s ? `${s.rateMbit.toFixed(1)} Mbit/s` : '–'),
          kv(
            'datagrams',
            s ? `${fmt.count(s.datagrams)}${per ? ` (${per.datagrams.toFixed(0)}/s)` : ''}` : '–',
          ),
          kv(
            'heartbeats',
            s ? `${fmt.count(s.heartbeats)}${per ? ` (${per.heartbeats.toFixed(1)}/s)` : ''}` : '–',
          ),
          kv('FEC repairs', s ? `${fmt.count(s.repairs)} in ${fmt.count(s.fecBlocks)} blocks` : '–'),
        ),
        h(
          'div',
          {},
          h('h3', {}, 'Into the link'),
          kv('UDP forwarded', s ? fmt.count(s.udpForwarded) : '–'),
          kv('UDP dropped', s ? fmt.count(s.udpDropped) : '–'),
          kv('send errors', s ? fmt.count(s.sendErrors) : '–'),
          kv('came back', s ? `${fmt.count(s.unexpectedInbound)} (a diode: always 0)` : '–'),
        ),
        h(
          'div',
          { class: 'span2 muted small' },
          d ? `${d.why} · read ${d.lastScrapeMs ? fmt.ago(d.lastScrapeMs) : 'never'} from ${d.metrics}` : '',
        ),
      ),
    );
  }
}
