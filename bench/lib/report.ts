/**
 * Benchmark results: the JSON schema written to bench/results/<name>.json (documented
 * in bench/README.md) and the plain-text table printed to the terminal.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Machine, machine } from './machine.js';
import { type Spread, spread } from './measure.js';
import type { Percentiles } from './pipeline.js';

export const SCHEMA_VERSION = 1;

/** What every benchmark gets from the runner. */
export interface BenchOptions {
  /** The smoke mode: fewer trials, shorter runs. */
  quick: boolean;
  /** Reports progress (the runner draws a bar when on a terminal). */
  progress: (done: number, total: number, what: string) => void;
}

/** A target a figure must meet: on its ratio to the baseline, or on its own value. */
export interface Target {
  on: 'ratio' | 'value';
  op: '>=' | '<=';
  limit: number;
}

export interface Figure {
  /** Stable identifier, for tools that compare runs. */
  id: string;
  label: string;
  /** Unit of `value` and `baseline.value`: 'ops/s', 'ns', 'µs', 'ms', 'B', 'changes/s', '×'. */
  unit: string;
  /** Ours, over the trials. */
  value: Spread;
  /** What `value` is compared with, measured in the same run. */
  baseline?: { label: string; value: Spread };
  /** value ÷ baseline, computed per trial (each trial measures both back to back). */
  ratio?: Spread;
  target?: Target;
  /** Whether the median meets the target (absent when there is no target). */
  pass?: boolean;
  note?: string;
}

/** Latency percentiles of several systems measured the same way in the same run (for charts). */
export interface Distribution {
  id: string;
  label: string;
  unit: 'µs';
  series: { name: string; percentiles: Percentiles }[];
}

/** An axis of a curve. */
export interface Axis {
  title: string;
  /** '' for a count with no unit. */
  unit: string;
  /** Drawn on a log scale. */
  log?: boolean;
}

/**
 * Lines of (x, y) points over a quantitative x axis, for the charts: results over time,
 * cost against node count. Added to schema 1 without a version change (optional field).
 */
export interface Curve {
  id: string;
  label: string;
  x: Axis;
  y: Axis;
  lines: { name: string; points: [number, number][] }[];
}

export interface BenchResult {
  schema: typeof SCHEMA_VERSION;
  name: string;
  title: string;
  date: string;
  /**
   * When the `npm run bench` that wrote this file started: the same in every file of one
   * run, so that the report can say whether its sections come from one run. Absent in
   * files written before it existed.
   */
  run?: string;
  quick: boolean;
  trials: number;
  machine: Machine;
  figures: Figure[];
  distributions: Distribution[];
  /** Absent when the benchmark draws none (and in files written before it existed). */
  curves?: Curve[];
}

/** Builds a figure from paired samples: `ours[i]` and `base[i]` were measured in the same trial. */
export function paired(
  f: Omit<Figure, 'value' | 'baseline' | 'ratio' | 'pass'>,
  ours: readonly number[],
  baseLabel: string,
  base: readonly number[],
): Figure {
  const ratios = ours.map((v, i) => v / base[i]!);
  return judge({
    ...f,
    value: spread(ours),
    baseline: { label: baseLabel, value: spread(base) },
    ratio: spread(ratios),
  });
}

/** Builds a figure with no baseline. */
export function single(
  f: Omit<Figure, 'value' | 'ratio' | 'pass'>,
  ours: readonly number[],
): Figure {
  return judge({ ...f, value: spread(ours) });
}

function judge(f: Figure): Figure {
  if (f.target === undefined) return f;
  const x = f.target.on === 'ratio' ? f.ratio?.median : f.value.median;
  if (x === undefined) return f;
  return { ...f, pass: f.target.op === '>=' ? x >= f.target.limit : x <= f.target.limit };
}

const resultsDir = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'bench',
  'results',
);

export function result(
  name: string,
  title: string,
  quick: boolean,
  trials: number,
  figures: Figure[],
  distributions: Distribution[] = [],
  curves: Curve[] = [],
): BenchResult {
  return {
    schema: SCHEMA_VERSION,
    name,
    title,
    date: new Date().toISOString(),
    quick,
    trials,
    machine: machine(),
    figures,
    distributions,
    ...(curves.length > 0 ? { curves } : {}),
  };
}

/** Writes bench/results/<name>.json (quick runs go to <name>.quick.json, which git ignores). */
export function save(r: BenchResult): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${r.name}${r.quick ? '.quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

/** A number in the figure's unit, short. */
export function fmt(x: number, unit: string): string {
  if (!Number.isFinite(x)) return String(x);
  if (unit === 'ops/s' || unit === 'changes/s') {
    if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M/s`;
    if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k/s`;
    return `${x.toFixed(0)} /s`;
  }
  if (unit === 'B') {
    if (x >= 2 ** 20) return `${(x / 2 ** 20).toFixed(1)} MiB`;
    if (x >= 2 ** 10) return `${(x / 2 ** 10).toFixed(1)} KiB`;
    return `${x.toFixed(1)} B`;
  }
  if (unit === '×') return `${x.toFixed(2)}×`;
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return `${x.toFixed(digits)} ${unit}`;
}

function fmtSpread(s: Spread, unit: string): string {
  return `${fmt(s.median, unit)} [${fmt(s.min, unit)}–${fmt(s.max, unit)}]`;
}

function fmtTarget(t: Target | undefined, unit: string): string {
  if (t === undefined) return '';
  return `${t.on === 'ratio' ? 'ratio' : 'value'} ${t.op} ${t.on === 'ratio' ? `${t.limit}×` : fmt(t.limit, unit)}`;
}

/** The result as a plain-text table (what `npm run bench` prints). */
export function table(r: BenchResult): string {
  const rows = [['figure', 'procgroups', 'baseline (same run)', 'ratio', 'target', '']];
  for (const f of r.figures) {
    rows.push([
      f.label,
      fmtSpread(f.value, f.unit),
      f.baseline ? `${f.baseline.label}: ${fmt(f.baseline.value.median, f.unit)}` : '',
      f.ratio
        ? `${f.ratio.median.toFixed(2)}× [${f.ratio.min.toFixed(2)}–${f.ratio.max.toFixed(2)}]`
        : '',
      fmtTarget(f.target, f.unit),
      f.pass === undefined ? '' : f.pass ? 'ok' : 'MISSED',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  const m = r.machine;
  return [
    `${r.title}${r.quick ? ' (quick)' : ''}`,
    `${m.cpu}, ${m.cores} cores, Node ${m.node}; median [min–max] of ${r.trials} trials`,
    '',
    line(rows[0]!),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.slice(1).map(line),
  ].join('\n');
}
