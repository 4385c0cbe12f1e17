/** A small element builder: h('div', { class: 'card' }, 'text', child). No framework. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A message in place of a chart or table that has nothing to show: what is missing, and why. */
export function empty(title: string, detail: string): HTMLElement {
  return h('div', { class: 'empty' }, h('div', { class: 'empty-title' }, title), h('div', {}, detail));
}

/** A table of the dashboard's grid style with these column headers; rows go in `body`. */
export function gridTable(bodyId: string, headers: string[]): { table: HTMLElement; body: HTMLElement } {
  const body = h('tbody', { id: bodyId });
  const head = h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t))));
  return { table: h('table', { class: 'grid' }, head, body), body };
}
