/**
 * BENCHMARKS.md and its charts, generated from bench/results/*.json.
 *
 * Charts are vega-lite specs rendered to SVG headless (vega's `renderer: 'none'` view
 * needs no browser and no canvas). The README's headline table is rewritten between
 * its `<!-- bench:start -->` and `<!-- bench:end -->` markers.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { BenchResult, Curve, Figure } from './report.js';
import { fmt } from './report.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const resultsDir = join(root, 'bench', 'results');
const chartsDir = join(root, 'bench', 'charts');

/** The headline figures (id per bench) that the README shows. */
const HEADLINE: [string, string][] = [
  ['index-read', 'members-vs-slice'],
  ['index-read', 'count-vs-get'],
  ['index-read', 'two-readers'],
  ['read-path', 'getmembers-worker'],
  ['read-path', 'pick-worker'],
  ['memory', 'bytes-per-membership'],
  ['calls', 'call-pipelined-vs-raw'],
  ['calls', 'call-pipelined-vs-comlink'],
  ['pg', 'join-visible-vs-rtt'],
  ['dispatch', 'dispatch-vs-piscina-default'],
  ['dispatch', 'dispatch-vs-best-tuned'],
  ['dispatch', 'cpu-efficiency'],
  ['jobs', 'jobs-first-vs-piscina'],
  ['jobs', 'jobs-total-vs-piscina'],
  ['bursts', 'burst-10k-vs-1k'],
];

/** The full runs' results, in `order` (the runner's order of benchmarks; others last). */
export function loadResults(order: readonly string[] = []): BenchResult[] {
  if (!existsSync(resultsDir)) return [];
  const files = readdirSync(resultsDir).filter(
    (f) => f.endsWith('.json') && !f.endsWith('.quick.json'),
  );
  const results = files.map(
    (f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as BenchResult,
  );
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  return results.sort((a, b) => rank(a.name) - rank(b.name));
}

async function svg(spec: vl.TopLevelSpec, file: string): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  mkdirSync(chartsDir, { recursive: true });
  writeFileSync(join(chartsDir, file), out);
  return `bench/charts/${file}`;
}

function find(results: BenchResult[], bench: string, id: string): Figure | undefined {
  return results.find((r) => r.name === bench)?.figures.find((f) => f.id === id);
}

async function charts(results: BenchResult[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const add = (bench: string, path: string) => out.set(bench, [...(out.get(bench) ?? []), path]);

  const readers = find(results, 'index-read', 'two-readers');
  if (readers?.baseline) {
    const values = [
      { threads: '1 reader thread', opsPerSec: readers.baseline.value.median },
      { threads: '2 reader threads', opsPerSec: readers.value.median },
    ];
    add(
      'index-read',
      await svg(
        {
          title: 'members(group) throughput against reader threads',
          width: 320,
          height: 180,
          data: { values },
          mark: 'bar',
          encoding: {
            x: { field: 'threads', type: 'nominal', title: null, axis: { labelAngle: 0 } },
            y: {
              field: 'opsPerSec',
              type: 'quantitative',
              title: 'reads per second (all threads)',
            },
          },
        },
        'read-threads.svg',
      ),
    );
  }

  const sizes = results
    .find((r) => r.name === 'index-read')
    ?.figures.filter((f) => f.id.startsWith('members-size-'));
  if (sizes !== undefined && sizes.length > 0) {
    const values = sizes.flatMap((f) => {
      const n = Number(f.id.slice('members-size-'.length));
      return [
        { size: n, ns: f.value.median, what: 'members(group)' },
        { size: n, ns: f.baseline?.value.median ?? 0, what: 'array.slice()' },
      ];
    });
    add(
      'index-read',
      await svg(
        {
          title: 'Cost of a members() call against group size',
          width: 360,
          height: 220,
          data: { values },
          mark: { type: 'line', point: true },
          encoding: {
            x: {
              field: 'size',
              type: 'quantitative',
              scale: { type: 'log' },
              title: 'members in the group',
            },
            y: {
              field: 'ns',
              type: 'quantitative',
              scale: { type: 'log' },
              title: 'nanoseconds per call',
            },
            color: { field: 'what', type: 'nominal', title: null },
          },
        },
        'members-by-size.svg',
      ),
    );
  }

  const dispatch = results.find((r) => r.name === 'dispatch');
  if (dispatch !== undefined) {
    const rivals = dispatch.figures.filter(
      (f) => f.id.startsWith('dispatch-vs-') && f.id !== 'dispatch-vs-best-tuned',
    );
    const first = rivals[0];
    if (first !== undefined) {
      const values = [
        { system: 'procgroups', opsPerSec: first.value.median },
        ...rivals.map((f) => ({ system: f.baseline!.label, opsPerSec: f.baseline!.value.median })),
      ];
      add(
        'dispatch',
        await svg(
          {
            title: 'No-op tasks per second, 2 worker threads each',
            width: 360,
            height: 200,
            data: { values },
            mark: 'bar',
            encoding: {
              y: { field: 'system', type: 'nominal', sort: '-x', title: null },
              x: { field: 'opsPerSec', type: 'quantitative', title: 'tasks per second' },
              color: {
                condition: { test: "datum.system === 'procgroups'", value: '#d95f02' },
                value: '#7570b3',
              },
            },
          },
          'dispatch-throughput.svg',
        ),
      );
    }
  }

  for (const r of results) {
    for (const d of r.distributions ?? []) {
      const values = d.series.flatMap((s) =>
        (['p50', 'p90', 'p99'] as const).map((p) => ({
          series: s.name,
          percentile: p,
          us: s.percentiles[p],
        })),
      );
      add(
        r.name,
        await svg(
          {
            title: d.label,
            width: 360,
            height: 200,
            data: { values },
            // Lines over the percentiles, on a log scale: bars cannot start at 0 on one.
            mark: { type: 'line', point: true },
            encoding: {
              x: {
                field: 'percentile',
                type: 'ordinal',
                sort: ['p50', 'p90', 'p99'],
                title: null,
                axis: { labelAngle: 0 },
              },
              y: {
                field: 'us',
                type: 'quantitative',
                scale: { type: 'log' },
                title: 'microseconds',
              },
              color: { field: 'series', type: 'nominal', title: null },
            },
          },
          `${d.id}.svg`,
        ),
      );
    }
  }
  for (const r of results) {
    for (const c of r.curves ?? []) add(r.name, await svg(curveSpec(c), `${c.id}.svg`));
  }
  return out;
}

/** A line chart of a curve: one colour per line, points marked when there are few. */
function curveSpec(c: Curve): vl.TopLevelSpec {
  const values = c.lines.flatMap((l) => l.points.map(([x, y]) => ({ line: l.name, x, y })));
  const few = c.lines.every((l) => l.points.length <= 20);
  const axis = (a: Curve['x'], field: 'x' | 'y') => ({
    field,
    type: 'quantitative' as const,
    title: a.unit === '' ? a.title : `${a.title} (${a.unit})`,
    ...(a.log ? { scale: { type: 'log' as const } } : {}),
  });
  return {
    title: c.label,
    width: 360,
    height: 220,
    data: { values },
    mark: { type: 'line', point: few },
    encoding: {
      x: axis(c.x, 'x'),
      y: axis(c.y, 'y'),
      color: { field: 'line', type: 'nominal', title: null },
    },
  };
}

function cell(f: Figure): string[] {
  const spread = (v: Figure['value']) =>
    `${fmt(v.median, f.unit)} (${fmt(v.min, f.unit)}–${fmt(v.max, f.unit)})`;
  const target = f.target
    ? `${f.target.on} ${f.target.op} ${f.target.on === 'ratio' ? `${f.target.limit}×` : fmt(f.target.limit, f.unit)}`
    : '';
  return [
    f.label,
    spread(f.value),
    f.baseline ? `${f.baseline.label}: ${fmt(f.baseline.value.median, f.unit)}` : '',
    f.ratio
      ? `${f.ratio.median.toFixed(2)}× (${f.ratio.min.toFixed(2)}–${f.ratio.max.toFixed(2)})`
      : '',
    target,
    f.pass === undefined ? '' : f.pass ? '✅' : '❌',
  ];
}

function mdTable(rows: string[][]): string {
  const head = ['figure', 'procgroups', 'baseline, same run', 'ratio', 'target', ''];
  const esc = (s: string) => s.replaceAll('|', '\\|');
  return [head, head.map(() => '---'), ...rows]
    .map((r) => `| ${r.map(esc).join(' | ')} |`)
    .join('\n');
}

const minute = (iso: string) => iso.slice(0, 16).replace('T', ' ');

/**
 * Says whether the report comes from one run, so that a benchmark run on its own after a
 * full run (which rewrites its section) never passes for part of that run.
 */
function provenance(results: readonly BenchResult[]): string {
  const unrecorded = results.filter((r) => r.run === undefined).length;
  if (unrecorded > 0)
    return `${unrecorded} of the ${results.length} result files predate the record of the run that wrote them: each section gives only when it finished.`;
  const runs = [...new Set(results.map((r) => r.run!))].sort();
  if (runs.length === 1)
    return `Every figure comes from one \`npm run bench\`, started ${minute(runs[0]!)} UTC.`;
  return `The figures come from ${runs.length} runs of \`npm run bench\`, started ${runs.map(minute).join(', ')} UTC: each section names its own.`;
}

/**
 * Writes BENCHMARKS.md and the charts, sections in `order`; rewrites the README's
 * headline table. Returns the files written.
 */
export async function writeReport(order: readonly string[]): Promise<string[]> {
  const results = loadResults(order);
  if (results.length === 0) return [];
  const pictures = await charts(results);
  const m = results[0]!.machine;
  const parts = [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` from `bench/results/*.json` (schema in [bench/README.md](bench/README.md)).',
    'Every figure is a median over trials with its min–max, next to a baseline measured in the same run on the',
    'same machine; the ratio is computed per trial. Absolute numbers on shared 2-core machines drift by 20–40%',
    'from run to run; ratios much less.',
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (V8 ${m.v8}), ${m.platform}/${m.arch}.`,
    '',
    provenance(results),
    '',
  ];
  for (const r of results) {
    parts.push(
      `## ${r.title}`,
      '',
      `\`${r.name}\` · ${r.trials} trials · ${minute(r.date)} UTC${r.run === undefined ? '' : ` · run started ${minute(r.run)} UTC`}`,
      '',
    );
    parts.push(mdTable(r.figures.map(cell)), '');
    const notes = r.figures.filter((f) => f.note).map((f) => `- ${f.label}: ${f.note}`);
    if (notes.length > 0) parts.push(...notes, '');
    for (const p of pictures.get(r.name) ?? []) parts.push(`![${p}](${p})`, '');
  }
  writeFileSync(join(root, 'BENCHMARKS.md'), parts.join('\n'));

  const headline = HEADLINE.map(([b, id]) => find(results, b, id))
    .filter((f): f is Figure => f !== undefined)
    .map(cell);
  const readme = join(root, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const start = text.indexOf('<!-- bench:start -->');
  const end = text.indexOf('<!-- bench:end -->');
  if (start >= 0 && end > start && headline.length > 0) {
    const table = `<!-- bench:start -->\n${mdTable(headline)}\n\n${m.cpu}, ${m.cores} cores, Node ${m.node}. ${provenance(results)} Full report: [BENCHMARKS.md](BENCHMARKS.md).\n`;
    writeFileSync(readme, text.slice(0, start) + table + text.slice(end));
  }
  return ['BENCHMARKS.md', ...[...pictures.values()].flat()];
}
