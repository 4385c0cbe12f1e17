/**
 * ECharts, tree-shaken: only the charts and components the pages use are bundled. Every
 * chart gets the dashboard's dark look, follows its container's size, and is reachable by
 * name from the page (window.tacmeshCharts) for the end-to-end test.
 */
import { BarChart, GraphChart, LineChart, LinesChart, PieChart, ScatterChart } from 'echarts/charts';
import {
  DataZoomInsideComponent,
  GeoComponent,
  GridComponent,
  LegendComponent,
  MarkAreaComponent,
  MarkLineComponent,
  TooltipComponent,
} from 'echarts/components';
import { type EChartsType, init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { FONT, GRID, MUTED, PANEL, TEXT } from './theme.js';

use([
  BarChart,
  GraphChart,
  LineChart,
  LinesChart,
  PieChart,
  ScatterChart,
  DataZoomInsideComponent,
  GeoComponent,
  GridComponent,
  LegendComponent,
  MarkAreaComponent,
  MarkLineComponent,
  TooltipComponent,
  CanvasRenderer,
]);

declare global {
  interface Window {
    tacmeshCharts: Record<string, EChartsType>;
  }
}
window.tacmeshCharts = {};

const observer = new ResizeObserver((entries) => {
  for (const e of entries) {
    const c = (e.target as HTMLElement & { chart?: EChartsType }).chart;
    if (c && !c.isDisposed()) c.resize();
  }
});

export const TOOLTIP = {
  backgroundColor: '#0b0f15',
  borderColor: '#374151',
  textStyle: { color: TEXT, fontFamily: FONT, fontSize: 12 },
  extraCssText: 'box-shadow: 0 4px 14px rgba(0,0,0,.5);',
};

export const AXIS = {
  axisLine: { lineStyle: { color: '#3b4350' } },
  axisTick: { lineStyle: { color: '#3b4350' } },
  axisLabel: { color: MUTED, fontFamily: FONT, fontSize: 11 },
  splitLine: { lineStyle: { color: GRID } },
  nameTextStyle: { color: MUTED, fontFamily: FONT, fontSize: 11 },
};

const linkLabel = (p: { data: { label?: string } }) => p.data.label ?? '';

/** A graph series' node names and edge labels (each link's `label` field). */
export const GRAPH_LABELS = {
  label: { show: true, color: TEXT, fontSize: 13 },
  edgeLabel: { show: true, color: MUTED, fontSize: 11, formatter: linkLabel },
};

/** A chart in `el`, named for the test hook; disposed with dispose(name). */
export function chart(name: string, el: HTMLElement): EChartsType {
  dispose(name);
  const c = init(el, null, { renderer: 'canvas' });
  c.setOption({
    backgroundColor: 'transparent',
    textStyle: { fontFamily: FONT, color: TEXT },
    tooltip: TOOLTIP,
  });
  (el as HTMLElement & { chart?: EChartsType }).chart = c;
  observer.observe(el);
  elements.set(name, el);
  window.tacmeshCharts[name] = c;
  return c;
}

const elements = new Map<string, HTMLElement>();

export function dispose(name: string): void {
  const c = window.tacmeshCharts[name];
  const el = elements.get(name);
  if (el) observer.unobserve(el);
  elements.delete(name);
  if (c && !c.isDisposed()) c.dispose();
  delete window.tacmeshCharts[name];
}

export function disposeAll(): void {
  for (const name of Object.keys(window.tacmeshCharts)) dispose(name);
}

export { PANEL };
