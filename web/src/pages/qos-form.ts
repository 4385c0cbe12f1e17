/**
 * The QoS page's form for the common edits, beside its JSON box: a class's guaranteed and
 * ceiling rate, and a service's precedence (the services the tower declares; a node's are
 * in its node.yaml). Each reads the current state, changes one field and sends it whole,
 * so the tower's usual checks answer (their errors shown as they come).
 */
import type { Precedence } from '../../../src/tower/api/services-types.js';
import { api } from '../api.js';
import { fill, h } from '../dom.js';

interface ClassRates {
  name: string;
  guaranteedBps: number;
  ceilingBps: number;
}

interface DeclaredService {
  name: string;
  precedence: Precedence;
}

const PRECEDENCES: Precedence[] = ['flash', 'immediate', 'priority', 'routine'];
const MBIT = 1_000_000;

/** The form; `changed` is called after a change was taken, to redraw the page. */
export function quickEdits(changed: () => void): {
  el: HTMLElement;
  load: (classes: ClassRates[]) => Promise<void>;
} {
  const cls = h('select', { id: 'qos-form-class' });
  const guaranteed = h('input', {
    id: 'qos-form-guaranteed',
    type: 'number',
    min: 0,
    step: 0.1,
    style: 'width:7em',
  });
  const ceiling = h('input', {
    id: 'qos-form-ceiling',
    type: 'number',
    min: 0,
    step: 0.1,
    style: 'width:7em',
  });
  const service = h('select', { id: 'qos-form-service' });
  const precedence = h(
    'select',
    { id: 'qos-form-precedence' },
    ...PRECEDENCES.map((p) => h('option', { value: p }, p)),
  );
  const said = h('div', { id: 'qos-form-outcome', class: 'apply-state' });
  let known: ClassRates[] = [];
  let declared: DeclaredService[] = [];
  const show = (ok: boolean, text: string) =>
    fill(said, h('span', { class: ok ? 'ok-text' : 'warn-text' }, text));
  const pickClass = () => {
    const c = known.find((k) => k.name === cls.value);
    guaranteed.value = c ? String(c.guaranteedBps / MBIT) : '';
    ceiling.value = c ? String(c.ceilingBps / MBIT) : '';
  };
  cls.addEventListener('change', pickClass);
  service.addEventListener('change', () => {
    precedence.value = declared.find((s) => s.name === service.value)?.precedence ?? 'routine';
  });

  const setRates = async () => {
    try {
      const s = await api<{ policy: { classes: ClassRates[] } & Record<string, unknown> }>('qos');
      const classes = s.policy.classes.map((c) =>
        c.name === cls.value
          ? {
              ...c,
              guaranteedBps: Math.round(Number(guaranteed.value) * MBIT),
              ceilingBps: Math.round(Number(ceiling.value) * MBIT),
            }
          : c,
      );
      const r = await api<{ version: number }>('qos', {
        method: 'PUT',
        body: JSON.stringify({ ...s.policy, classes }),
      });
      show(true, `✓ class ${cls.value}: v${r.version}`);
      changed();
    } catch (err) {
      show(false, (err as Error).message);
    }
  };
  const setPrecedence = async () => {
    try {
      const now = await api<DeclaredService[]>('services/declared');
      const next = now.map((s) => (s.name === service.value ? { ...s, precedence: precedence.value } : s));
      await api('services', { method: 'PUT', body: JSON.stringify(next) });
      show(true, `✓ service ${service.value}: ${precedence.value}`);
      changed();
    } catch (err) {
      show(false, (err as Error).message);
    }
  };

  const el = h(
    'div',
    { id: 'qos-form' },
    h(
      'div',
      { class: 'actions' },
      'Class ',
      cls,
      ' guaranteed Mbit/s ',
      guaranteed,
      ' ceiling Mbit/s (0: the link) ',
      ceiling,
      h(
        'button',
        { type: 'button', class: 'small', id: 'qos-form-rates', onclick: () => void setRates() },
        'Set rates',
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      'Service ',
      service,
      ' precedence ',
      precedence,
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          id: 'qos-form-set-precedence',
          onclick: () => void setPrecedence(),
        },
        'Set precedence',
      ),
    ),
    said,
  );
  const load = async (classes: ClassRates[]) => {
    const keep = cls.value;
    known = classes;
    cls.replaceChildren(...classes.map((c) => h('option', { value: c.name }, c.name)));
    if (classes.some((c) => c.name === keep)) cls.value = keep;
    if (document.activeElement !== guaranteed && document.activeElement !== ceiling) pickClass();
    declared = await api<DeclaredService[]>('services/declared').catch(() => []);
    const keepService = service.value;
    service.replaceChildren(...declared.map((s) => h('option', { value: s.name }, s.name)));
    if (declared.some((s) => s.name === keepService)) service.value = keepService;
    if (document.activeElement !== precedence)
      precedence.value = declared.find((s) => s.name === service.value)?.precedence ?? 'routine';
  };
  return { el, load };
}
