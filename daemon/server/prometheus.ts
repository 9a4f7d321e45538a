/**
 * The Prometheus text exposition format (version 0.0.4) for the few counters, gauges and histograms
 * the daemon keeps. Written here rather than taken from prom-client: that library and its
 * dependencies were a tenth of the installed size and a share of the idle daemon's memory, for a
 * format that fits on one page. The class shapes follow prom-client's, so the metric definitions
 * read the same.
 */

type Labels<L extends string> = Partial<Record<L, string | number>>;

interface MetricOptions<L extends string, M> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers?: Registry[];
  /** Called before each scrape, with `this` the metric, to bring its values up to date. */
  collect?: (this: M) => void | Promise<void>;
}

interface Exposable {
  readonly name: string;
  expose(): Promise<string>;
}

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  readonly #metrics = new Map<string, Exposable>();

  register(metric: Exposable): void {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered already`);
    this.#metrics.set(metric.name, metric);
  }

  async metrics(): Promise<string> {
    const parts: string[] = [];
    for (const m of this.#metrics.values()) parts.push(await m.expose());
    return parts.join('\n');
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function labelText(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

abstract class Metric<L extends string, M> implements Exposable {
  readonly name: string;
  readonly #help: string;
  readonly #type: string;
  protected readonly labelNames: readonly L[];
  readonly #collect: ((this: M) => void | Promise<void>) | undefined;

  constructor(options: MetricOptions<L, M>, type: string) {
    this.name = options.name;
    this.#help = options.help;
    this.#type = type;
    this.labelNames = options.labelNames ?? [];
    this.#collect = options.collect;
    for (const r of options.registers ?? []) r.register(this);
  }

  /** The label values in labelNames order; unknown label names are a programming error. */
  protected pairs(labels: Labels<L> | undefined): [string, string][] {
    const out: [string, string][] = [];
    if (labels) {
      for (const key of Object.keys(labels)) {
        if (!this.labelNames.includes(key as L)) throw new Error(`metric ${this.name} has no label ${key}`);
      }
    }
    for (const n of this.labelNames) {
      const v = labels?.[n];
      if (v !== undefined) out.push([n, String(v)]);
    }
    return out;
  }

  protected key(pairs: readonly (readonly [string, string])[]): string {
    return pairs.map(([, v]) => v).join('\u0000');
  }

  protected abstract samples(): string[];

  async expose(): Promise<string> {
    if (this.#collect) await this.#collect.call(this as unknown as M);
    return [`# HELP ${this.name} ${escapeHelp(this.#help)}`, `# TYPE ${this.name} ${this.#type}`, ...this.samples()].join('\n');
  }
}

/** One value per label set; shared by counters and gauges. */
abstract class ValueMetric<L extends string, M> extends Metric<L, M> {
  protected readonly values = new Map<string, { pairs: [string, string][]; value: number }>();

  protected update(labels: Labels<L> | undefined, f: (old: number) => number): void {
    const pairs = this.pairs(labels);
    const key = this.key(pairs);
    const entry = this.values.get(key);
    if (entry) entry.value = f(entry.value);
    else this.values.set(key, { pairs, value: f(0) });
  }

  reset(): void {
    this.values.clear();
  }

  protected samples(): string[] {
    // Like prom-client: a metric without labels shows 0 before its first update.
    if (this.values.size === 0 && this.labelNames.length === 0) return [`${this.name} 0`];
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.pairs)} ${formatValue(e.value)}`);
  }
}

export class Counter<L extends string = string> extends ValueMetric<L, Counter<L>> {
  constructor(options: MetricOptions<L, Counter<L>>) {
    super(options, 'counter');
  }

  inc(labels?: Labels<L> | number, value = 1): void {
    if (typeof labels === 'number') {
      this.inc(undefined, labels);
      return;
    }
    if (!(value >= 0)) throw new Error(`counter ${this.name} cannot decrease`);
    this.update(labels, (old) => old + value);
  }
}

export class Gauge<L extends string = string> extends ValueMetric<L, Gauge<L>> {
  constructor(options: MetricOptions<L, Gauge<L>>) {
    super(options, 'gauge');
  }

  set(labels: Labels<L> | number, value?: number): void {
    if (typeof labels === 'number') this.update(undefined, () => labels);
    else this.update(labels, () => value ?? 0);
  }
}

export class Histogram<L extends string = string> extends Metric<L, Histogram<L>> {
  readonly #buckets: number[];
  readonly #series = new Map<string, { pairs: [string, string][]; counts: number[]; sum: number; count: number }>();

  constructor(options: MetricOptions<L, Histogram<L>> & { buckets: readonly number[] }) {
    super(options, 'histogram');
    this.#buckets = [...options.buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels<L>, value: number): void {
    const pairs = this.pairs(labels);
    const key = this.key(pairs);
    let s = this.#series.get(key);
    if (!s) {
      s = { pairs, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    // Stored per bucket; made cumulative when exposed.
    const i = this.#buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  protected samples(): string[] {
    const out: string[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.#buckets.forEach((b, i) => {
        cumulative += s.counts[i] ?? 0;
        out.push(`${this.name}_bucket${labelText([['le', formatValue(b)], ...s.pairs])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText([['le', '+Inf'], ...s.pairs])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.pairs)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.pairs)} ${s.count}`);
    }
    return out;
  }
}
