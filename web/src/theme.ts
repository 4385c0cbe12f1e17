/**
 * Colours with one meaning each, everywhere: a locality always has the same colour; an
 * address always has the same colour in every pie; status classes are green/blue/amber/red.
 */
import type { Locality } from './api.js';

export const LOCALITY_COLOR: Record<Locality | 'all', string> = {
  intra: '#34d399',
  inter: '#60a5fa',
  external: '#f59e0b',
  all: '#c084fc',
};

export const LOCALITY_LABEL: Record<Locality | 'all', string> = {
  intra: 'Inside one node',
  inter: 'Between nodes',
  external: 'External',
  all: 'All three',
};

/** Distinguishable on a dark background. */
export const PALETTE = [
  '#60a5fa',
  '#f472b6',
  '#34d399',
  '#fbbf24',
  '#a78bfa',
  '#fb7185',
  '#22d3ee',
  '#a3e635',
  '#f97316',
  '#e879f9',
  '#2dd4bf',
  '#facc15',
  '#818cf8',
  '#4ade80',
  '#fda4af',
  '#93c5fd',
];

/** The same colour for the same address (or node name) on every chart. */
export function colorOf(key: string): string {
  if (key === 'other') return '#4b5563';
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return PALETTE[(h >>> 0) % PALETTE.length] ?? '#60a5fa';
}

export function statusColor(status: number | null): string {
  if (status === null) return '#6b7280';
  if (status >= 500) return '#f87171';
  if (status >= 400) return '#fbbf24';
  if (status >= 300) return '#60a5fa';
  return '#34d399';
}

export const TEXT = '#d1d5db';
export const MUTED = '#8b95a7';
export const GRID = '#252b36';
export const PANEL = '#151a22';
export const FONT = "'Inter', 'Segoe UI', 'Noto Sans', 'DejaVu Sans', sans-serif";
export const MONO = "'JetBrains Mono', 'DejaVu Sans Mono', 'Consolas', monospace";
