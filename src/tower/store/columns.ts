/**
 * How a stored table is declared: one column per field of its row type, in table order,
 * with the column's DuckDB type and role. The declaration (tables.ts) is the only list of
 * a table's columns: CREATE TABLE and the migrations (catalog.ts), the appenders
 * (records.ts), the inserts and reads (duckdb.ts) and the InfluxDB line (influx.ts) all
 * follow it. The compiler holds it to the row type: every field needs a column, of a type
 * that fits its values, NULL-able exactly when the field may be null.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import type { IngestBatch } from '../model.js';

type NumberType = 'BIGINT' | 'UBIGINT' | 'UINTEGER' | 'USMALLINT' | 'UTINYINT' | 'DOUBLE';
/** JSON: arrays and objects, stored as JSON text in a VARCHAR (null as the text "null"). */
export type ColumnType = NumberType | 'BOOLEAN' | 'VARCHAR' | 'JSON';

type TypeFor<V> = [NonNullable<V>] extends [string]
  ? 'VARCHAR'
  : [NonNullable<V>] extends [number]
    ? NumberType
    : [NonNullable<V>] extends [boolean]
      ? 'BOOLEAN'
      : 'JSON';

interface Roles {
  /** The schema version that added the column (tables.ts lists them); default the table's. */
  since?: number;
  /** Part of the series' identity in InfluxDB (a tag there, a field otherwise). */
  tag?: true;
  /** The row's time: retention cuts by it, and it is the InfluxDB point's time. */
  time?: true;
  primaryKey?: true;
}

type SpecFor<V> =
  TypeFor<V> extends 'JSON'
    ? 'JSON' | (Roles & { type: 'JSON' })
    : null extends V
      ? Roles & { type: TypeFor<V>; nullable: true }
      : TypeFor<V> | (Roles & { type: TypeFor<V>; nullable?: never });

/** One entry per field of the row, in the table's column order. */
export type ColumnSpecs<R> = { [K in keyof R]-?: SpecFor<R[K]> };

export interface Column<R> {
  /** The row's field. */
  field: keyof R & string;
  /** The column's name: the field in snake_case. */
  name: string;
  type: ColumnType;
  nullable: boolean;
  since: number;
  tag: boolean;
  time: boolean;
  primaryKey: boolean;
}

export interface Table<R> {
  name: string;
  /** The schema version that added the table. */
  since: number;
  columns: Column<R>[];
  /** Raw rows go after the store's retention, roll-ups after theirs; by the time column. */
  retention?: 'raw' | 'rollup';
}

export interface TableOptions {
  since?: number;
  retention?: 'raw' | 'rollup';
}

const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function table<R>(name: string, options: TableOptions, specs: ColumnSpecs<R>): Table<R> {
  const since = options.since ?? 1;
  const columns = Object.entries(specs).map(([field, raw]): Column<R> => {
    const s = (typeof raw === 'string' ? { type: raw } : raw) as Roles & {
      type: ColumnType;
      nullable?: true;
    };
    return {
      field: field as keyof R & string,
      name: snake(field),
      type: s.type,
      nullable: s.nullable === true,
      since: s.since ?? since,
      tag: s.tag === true,
      time: s.time === true,
      primaryKey: s.primaryKey === true,
    };
  });
  // ALTER TABLE ADD COLUMN puts a column last: a store that grew column by column and one
  // created new then have the same order, which the positional appenders rely on.
  columns.forEach((c, i) => {
    const before = columns[i - 1];
    if (c.since < since || (before && c.since < before.since))
      throw new Error(`table ${name}: column ${c.name} (since ${c.since}) must come after the older ones`);
  });
  if (options.retention && !columns.some((c) => c.time))
    throw new Error(`table ${name}: retention needs a time column`);
  return { name, since, columns, ...(options.retention ? { retention: options.retention } : {}) };
}

/** The IngestBatch lists that hold records: one stored table each. */
export type BatchKey = {
  [K in keyof IngestBatch]: IngestBatch[K] extends unknown[] ? K : never;
}[keyof IngestBatch];
export type RecordOf<K extends BatchKey> = IngestBatch[K][number];

/** What every stored row of a node's records has. */
export interface StoredRecord {
  node: string;
  seq: number;
  timeMs: number;
}

/**
 * A table of a node's records: they come in a batch's list, each record one row, or, for a
 * record that holds a list (a route report's routes), one row per item, all with its seq.
 */
export interface RecordTable<K extends BatchKey, Row extends StoredRecord = StoredRecord> extends Table<Row> {
  batch: K;
  /** The InfluxDB measurement its rows become. */
  measurement: string;
  rows: (record: RecordOf<K>) => Row[];
}

/** A record table of batch list K, whatever its row type: what the store and the sink iterate over. */
export type SomeRecordTable<K extends BatchKey = BatchKey> = Omit<RecordTable<K>, 'columns' | 'rows'> & {
  columns: Column<never>[];
  rows: (record: RecordOf<K>) => StoredRecord[];
};

type RecordOptions = TableOptions & { measurement: string };

export function recordTable<K extends BatchKey>(
  batch: K,
  name: string,
  options: RecordOptions,
  specs: ColumnSpecs<RecordOf<K>>,
): RecordTable<K, RecordOf<K>>;
export function recordTable<K extends BatchKey, Row extends StoredRecord>(
  batch: K,
  name: string,
  options: RecordOptions & { rows: (record: RecordOf<K>) => Row[] },
  specs: ColumnSpecs<Row>,
): RecordTable<K, Row>;
export function recordTable<K extends BatchKey, Row extends StoredRecord>(
  batch: K,
  name: string,
  options: RecordOptions & { rows?: (record: RecordOf<K>) => Row[] },
  specs: ColumnSpecs<Row>,
): RecordTable<K, Row> {
  const { rows, measurement, ...rest } = options;
  const t = table<Row>(name, { retention: 'raw', ...rest }, specs);
  for (const field of ['node', 'seq', 'timeMs'])
    if (!t.columns.some((c) => c.field === field)) throw new Error(`record table ${name} has no ${field}`);
  return { ...t, batch, measurement, rows: rows ?? ((r) => [r as unknown as Row]) };
}

/** A row's value as DuckDB takes it in a statement's parameters. */
export function toStored<R>(c: Column<R>, row: R): DuckDBValue {
  const v = row[c.field];
  if (c.type === 'JSON') return JSON.stringify(v ?? null);
  return v as DuckDBValue;
}

/** A stored value as the row has it: BIGINTs as numbers (ms times, counts, all below 2^53), JSON parsed. */
export function fromStored<R>(c: Column<R>, value: unknown): unknown {
  if (value === null) return c.type === 'JSON' ? null : value;
  if (c.type === 'JSON') return JSON.parse(String(value));
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** A row read back whole (getRowObjectsJS: columns by name). */
export function rowOf<R>(t: Table<R>, stored: Record<string, unknown>): R {
  const row: Record<string, unknown> = {};
  for (const c of t.columns) row[c.field] = fromStored(c, stored[c.name]);
  return row as R;
}
