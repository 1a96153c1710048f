/**
 * A small Prometheus metrics registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4).
 *
 * @module
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Default histogram buckets for durations in seconds (100 µs … 30 s). */
export const SECONDS_BUCKETS: readonly number[] = [
  0.0001,
  0.0005,
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  30,
];

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  name: string;
  help: string;
  kind: Kind;
  buckets?: readonly number[];
  series: Map<string, Series>;
  /** The series without labels, once made (the common case, found without a key). */
  plain?: Series;
}

interface Series {
  labels: Labels;
  value: number;
  counts?: number[];
  sum?: number;
  count?: number;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Metric families by name. A family is declared once (`counter`, `gauge`, `histogram`)
 * with its help text; its series are keyed by their labels. Declaring a name again with
 * another kind throws; with the same kind it returns the same family.
 */
export class MetricRegistry {
  #families = new Map<string, Family>();

  /** A counter (only goes up; its name should end in `_total`). */
  counter(name: string, help: string): Counter {
    return new Counter(this.#family(name, help, "counter"));
  }

  /** A gauge (goes up and down; set at scrape time or as things change). */
  gauge(name: string, help: string): Gauge {
    return new Gauge(this.#family(name, help, "gauge"));
  }

  /** A histogram (cumulative buckets, `_sum`, `_count`). */
  histogram(name: string, help: string, buckets: readonly number[] = SECONDS_BUCKETS): Histogram {
    const sorted = [...buckets].sort((a, b) => a - b);
    return new Histogram(this.#family(name, help, "histogram", sorted));
  }

  /** Removes every series of the gauge family `name` (before setting it afresh). */
  resetGauge(name: string): void {
    const f = this.#families.get(name);
    if (f?.kind === "gauge") {
      f.series.clear();
      f.plain = undefined;
    }
  }

  /** The exposition text of every family, in declaration order. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      if (f.series.size === 0) continue;
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${f.name} ${f.kind}`);
      for (const s of f.series.values()) {
        if (f.kind !== "histogram") {
          out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
          continue;
        }
        let cumulative = 0;
        f.buckets!.forEach((le, i) => {
          cumulative += s.counts![i];
          out.push(
            `${f.name}_bucket${formatLabels({ ...s.labels, le: formatValue(le) })} ${cumulative}`,
          );
        });
        out.push(`${f.name}_bucket${formatLabels({ ...s.labels, le: "+Inf" })} ${s.count}`);
        out.push(`${f.name}_sum${formatLabels(s.labels)} ${formatValue(s.sum!)}`);
        out.push(`${f.name}_count${formatLabels(s.labels)} ${s.count}`);
      }
    }
    return out.length ? out.join("\n") + "\n" : "";
  }

  #family(name: string, help: string, kind: Kind, buckets?: readonly number[]): Family {
    if (!NAME_RE.test(name)) throw new Error(`Cannot declare metric ${name}: bad name`);
    const existing = this.#families.get(name);
    if (existing) {
      if (existing.kind !== kind) {
        throw new Error(`Cannot declare metric ${name} as ${kind}: it is a ${existing.kind}`);
      }
      return existing;
    }
    const family: Family = { name, help, kind, buckets, series: new Map() };
    this.#families.set(name, family);
    return family;
  }
}

/** Whether `labels` has no label (checked without building a key: counters count per event). */
function unlabelled(labels: Labels): boolean {
  for (const _ in labels) return false;
  return true;
}

function seriesOf(family: Family, labels: Labels): Series {
  if (unlabelled(labels)) return family.plain ??= keyedSeries(family, {});
  return keyedSeries(family, labels);
}

function keyedSeries(family: Family, labels: Labels): Series {
  const key = labelKey(labels);
  let s = family.series.get(key);
  if (!s) {
    for (const k of Object.keys(labels)) {
      if (!LABEL_RE.test(k) || k === "le") {
        throw new Error(`Cannot use label ${k} on ${family.name}: bad label name`);
      }
    }
    s = { labels: { ...labels }, value: 0 };
    if (family.kind === "histogram") {
      s.counts = family.buckets!.map(() => 0);
      s.sum = 0;
      s.count = 0;
    }
    family.series.set(key, s);
  }
  return s;
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return keys.sort().map((k) => `${k}=${labels[k]}`).join("\u0000");
}

/** A counter family: `inc(labels, by)`; `set` for counters mirrored from a node's status. */
export class Counter {
  #family: Family;

  constructor(family: Family) {
    this.#family = family;
  }

  /** Adds `by` (≥ 0) to the series of `labels` (none: the unlabelled one, found at once). */
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) return;
    const f = this.#family;
    (labels === undefined ? f.plain ??= keyedSeries(f, {}) : seriesOf(f, labels)).value += by;
  }

  /** Sets the series to a total counted elsewhere (a status field); never lowers it. */
  set(labels: Labels, total: number): void {
    if (!Number.isFinite(total)) return;
    const s = seriesOf(this.#family, labels);
    if (total > s.value) s.value = total;
  }
}

/** A gauge family. */
export class Gauge {
  #family: Family;

  constructor(family: Family) {
    this.#family = family;
  }

  /** Sets the series of `labels` to `value` (non-numbers are ignored). */
  set(labels: Labels, value: unknown): void {
    const n = typeof value === "boolean" ? (value ? 1 : 0) : Number(value);
    if (value === null || value === undefined || !Number.isFinite(n)) return;
    seriesOf(this.#family, labels).value = n;
  }
}

/** A histogram family. */
export class Histogram {
  #family: Family;

  constructor(family: Family) {
    this.#family = family;
  }

  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = seriesOf(this.#family, labels);
    const buckets = this.#family.buckets!;
    let i = 0;
    while (i < buckets.length && value > buckets[i]) i++;
    if (i < buckets.length) s.counts![i]++;
    s.sum! += value;
    s.count! += 1;
  }
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",")}}`;
}

function escapeLabel(v: string): string {
  return String(v).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}
