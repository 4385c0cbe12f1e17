/**
 * QoS: the policy in force (classes, rules, links, automatic mode and the ceilings it
 * lowered), each node's state (version applied, a refusal and its reason) and per-class
 * rates and drops from the nodes' counters; operators edit the policy as JSON, check it
 * (every problem listed) and apply it; the audit log shows who changed what, and when —
 * the closed loop's changes as "auto".
 */
import { api, type QosApplied, type QosAuditLog, type QosCheck, type QosView } from '../api.js';
import { empty, fill, h } from '../dom.js';
import type { PageContext } from '../main.js';
import { refresher } from '../refresh.js';
import { quickEdits } from './qos-form.js';

const mbit = (bps: number) => (bps ? `${(bps / 1e6).toFixed(2)} Mbit/s` : '—');
const PROTO: Record<number, string> = { 0: 'any', 1: 'icmp', 6: 'tcp', 17: 'udp' };
const ports = (p?: [number, number]) => (p ? (p[0] === p[1] ? String(p[0]) : `${p[0]}–${p[1]}`) : 'any');

function table(head: string[], rows: (string | Node)[][], id: string): HTMLElement {
  return h(
    'table',
    { class: 'grid', id },
    h('thead', {}, h('tr', {}, ...head.map((t) => h('th', {}, t)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

function card(title: string, ...body: (Node | string)[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), ...body);
}

export function mountQos(ctx: PageContext): () => void {
  const operator = ctx.user.role === 'operator';
  const error = h('div', { class: 'error-bar', hidden: true });
  const head = h('div', { class: 'muted', id: 'qos-summary' });
  const classes = h('div', { id: 'qos-classes' });
  const rules = h('div', { id: 'qos-rules' });
  const nodes = h('div', { id: 'qos-nodes' });
  const audit = h('div', { id: 'qos-audit' });
  const editor = h('textarea', {
    id: 'qos-editor',
    spellcheck: 'false',
    rows: 18,
    style: 'width:100%;font-family:monospace;font-size:12px',
    disabled: !operator,
  });
  const problems = h('ul', { id: 'qos-errors', class: 'warn-text' });
  const outcome = h('div', { id: 'qos-outcome', class: 'apply-state' });
  const form = quickEdits(() => void reload());
  let dirty = false;
  editor.addEventListener('input', () => {
    dirty = true;
  });

  const parse = (): unknown => {
    try {
      return JSON.parse(editor.value);
    } catch (err) {
      fill(problems, h('li', {}, `not JSON: ${(err as Error).message}`));
      return undefined;
    }
  };
  const check = async (): Promise<boolean> => {
    const draft = parse();
    if (draft === undefined) return false;
    const v = await api<QosCheck>('qos/validate', {
      method: 'POST',
      body: JSON.stringify(draft),
    });
    fill(problems, ...v.errors.map((e) => h('li', {}, e)));
    fill(outcome, v.ok ? h('span', { class: 'ok-text' }, '✓ the policy is sound') : '');
    return v.ok;
  };
  const apply = async () => {
    if (!(await check())) return;
    try {
      const r = await api<QosApplied>('qos', {
        method: 'PUT',
        body: editor.value,
      });
      dirty = false;
      fill(
        outcome,
        r.settled
          ? h('span', { class: 'ok-text' }, `✓ v${r.version} in force on every connected node`)
          : h('span', { class: 'warn-text' }, `v${r.version} sent; not every node has reported it yet`),
      );
      void reload();
    } catch (err) {
      fill(problems, h('li', {}, (err as Error).message));
    }
  };

  fill(
    ctx.root,
    error,
    h('div', { class: 'page-head' }, h('h1', {}, 'QoS'), head),
    card('Classes', classes),
    card('Rules', rules),
    card('Nodes: version in force and per-class rates', nodes),
    ...(operator ? [card('Change a class or a service', form.el)] : []),
    card(
      operator ? 'Edit the policy' : 'The policy (read-only: viewer)',
      editor,
      problems,
      operator
        ? h(
            'div',
            { class: 'actions' },
            h(
              'button',
              { type: 'button', class: 'small', id: 'qos-check', onclick: () => void check() },
              'Check',
            ),
            h(
              'button',
              { type: 'button', class: 'primary small', id: 'qos-apply', onclick: () => void apply() },
              'Apply',
            ),
            outcome,
          )
        : outcome,
    ),
    card('Audit log', audit),
  );

  const reload = async () => {
    const [s, log] = await Promise.all([api<QosView>('qos'), api<QosAuditLog>('qos/audit?limit=50')]);
    error.hidden = true;
    if (operator) await form.load(s.policy.classes);
    const lowered = Object.entries(s.limits);
    const measured = Object.entries(s.measured);
    head.textContent = `policy v${s.version} · automatic mode ${s.policy.auto.enabled ? 'on' : 'off'}${
      lowered.length ? ` · ceilings lowered on ${lowered.map(([l]) => l).join(', ')}` : ''
    }${
      measured.length
        ? ` · measured: ${measured.map(([l, m]) => `${l} ${mbit(m.loadTxBps)} of ${mbit(m.capacityBps)} (${m.state})`).join(', ')}`
        : ''
    }`;
    fill(
      classes,
      s.policy.classes.length
        ? table(
            ['class', 'priority', 'guaranteed', 'ceiling', 'DSCP', 'lowered by the loop'],
            s.policy.classes.map((c) => [
              c.name,
              String(c.priority),
              mbit(c.guaranteedBps),
              c.ceilingBps ? mbit(c.ceilingBps) : 'link rate',
              String(c.dscp),
              lowered
                .filter(([, m]) => m[c.name] !== undefined)
                .map(([l, m]) => `${l}: ${mbit(m[c.name] ?? 0)}`)
                .join(', ') || '—',
            ]),
            'qos-class-table',
          )
        : empty('No classes', 'An operator sets them below.'),
    );
    fill(
      rules,
      s.policy.rules.length
        ? table(
            [
              'rule',
              'class',
              'source',
              'destination',
              'protocol',
              'ports (src → dst)',
              'DSCP in',
              'police',
              'scope',
            ],
            s.policy.rules.map((r) => [
              r.name,
              r.class,
              r.srcPrefixes.join(', ') || 'any',
              [...r.dstPrefixes, ...r.httpHosts.map((x) => `http:${x}`)].join(', ') || 'any',
              PROTO[r.protocol] ?? String(r.protocol),
              `${ports(r.srcPorts)} → ${ports(r.dstPorts)}`,
              r.matchDscp === undefined ? 'any' : String(r.matchDscp),
              r.police ? `${mbit(r.police.bps)} then ${r.police.action}` : '—',
              r.scope ? [r.scope.node, r.scope.iface].filter(Boolean).join('/') : 'all nodes',
            ]),
            'qos-rule-table',
          )
        : empty('No rules', 'Traffic no rule matches goes to the default class.'),
    );
    const rows = Object.entries(s.nodes).flatMap(([name, n]) => {
      const state = !n.connected
        ? 'disconnected'
        : n.applied === s.version
          ? `✓ v${n.applied}`
          : `v${n.applied} (tower v${s.version})`;
      const refused = n.refused ? `refused v${n.refused.version}: ${n.refused.error}` : '';
      const list = n.rates.length ? n.rates : [{ iface: '—', class: '—', bps: 0, drops: 0 }];
      return list.map((r) => [
        name,
        state,
        refused,
        r.iface,
        r.class === '*' ? '(whole link)' : r.class,
        mbit(r.bps),
        String(r.drops),
      ]);
    });
    fill(
      nodes,
      rows.length
        ? table(['node', 'in force', 'refusal', 'link', 'class', 'rate', 'drops/s'], rows, 'qos-node-table')
        : empty('No node has reported QoS', 'Nodes report once they have a policy with links of theirs.'),
    );
    fill(
      audit,
      table(
        ['time', 'who', 'what', 'version', 'summary'],
        log.map((a) => [new Date(a.timeMs).toLocaleString(), a.who, a.action, String(a.version), a.summary]),
        'qos-audit-table',
      ),
    );
    if (!dirty) editor.value = JSON.stringify(s.policy, null, 2);
  };
  return refresher(reload, {
    everyMs: 2000,
    alsoWhenNotLive: true,
    onError: (err) => {
      error.hidden = false;
      error.textContent = `The tower did not answer: ${err.message}`;
    },
  });
}
