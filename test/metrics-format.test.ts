/**
 * /metrics is written by credport's own exposition code (daemon/server/prometheus.ts). Prometheus'
 * own Python client parses it here: what a scraper would read, including label values carrying the
 * characters the format must escape.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { Counter, Gauge, Histogram, Registry } from '../daemon/server/prometheus.js';
import { assertPresent, needs, tool } from './helpers/tools.js';

const parser = tool(
  "Prometheus' Python client (python3-prometheus-client)",
  () => spawnSync('/usr/bin/python3', ['-c', 'import prometheus_client.parser'], { stdio: 'ignore' }).status === 0,
  'apt-get install python3-prometheus-client',
);

interface Sample {
  family: string;
  type: string;
  help: string;
  name: string;
  labels: Record<string, string>;
  value: number | string;
}

const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        v = s.value
        out.append({"family": f.name, "type": f.type, "help": f.documentation, "name": s.name,
                    "labels": s.labels, "value": ("+Inf" if v == math.inf else v)})
print(json.dumps(out))
`;

function parse(text: string): Sample[] {
  const r = spawnSync('/usr/bin/python3', ['-c', PARSE], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the Prometheus parser refused the text: ${r.stderr}`);
  return JSON.parse(r.stdout) as Sample[];
}

t.test('the exposition text parses with the Prometheus client, values and escapes intact', needs(parser), async (t) => {
  if (!assertPresent(t, parser)) return;
  const registry = new Registry();
  const requests = new Counter({
    name: 'x_requests_total',
    help: 'Requests\nby "endpoint"',
    labelNames: ['endpoint', 'status'],
    registers: [registry],
  });
  requests.inc({ endpoint: 'ecs', status: '200' });
  requests.inc({ endpoint: 'ecs', status: '200' }, 2);
  requests.inc({ endpoint: 'evil "quoted"\\ back\nslash', status: '403' });
  const bare = new Counter({ name: 'x_bare_total', help: 'never incremented', registers: [registry] });
  t.ok(bare);
  let collected = 0;
  new Gauge({
    name: 'x_seconds',
    help: 'collected at scrape',
    labelNames: ['profile'],
    registers: [registry],
    collect() {
      collected++;
      this.reset();
      this.set({ profile: 'p' }, 42.5);
    },
  });
  const h = new Histogram({
    name: 'x_duration_seconds',
    help: 'timing',
    labelNames: ['backend'],
    buckets: [0.1, 1, 0.01],
    registers: [registry],
  });
  for (const v of [0.005, 0.05, 0.5, 5]) h.observe({ backend: 'file' }, v);

  const samples = parse(await registry.metrics());
  const find = (name: string, labels: Record<string, string>) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  t.equal(find('x_requests_total', { endpoint: 'ecs', status: '200' })?.value, 3, 'counts add up');
  t.equal(
    find('x_requests_total', { endpoint: 'evil "quoted"\\ back\nslash' })?.value,
    1,
    'a label value with quote, backslash and newline comes back unchanged',
  );
  t.equal(samples.find((s) => s.family === 'x_requests')?.help, 'Requests\nby "endpoint"', 'help text escaped and restored');
  t.equal(find('x_bare_total', {})?.value, 0, 'a counter without labels shows 0 before any increment');
  t.equal(find('x_seconds', { profile: 'p' })?.value, 42.5, 'collect ran before the scrape');
  t.equal(collected, 1);
  t.equal(samples.find((s) => s.name === 'x_seconds')?.type, 'gauge');
  // Buckets sorted and cumulative: 0.005 <= 0.01; 0.05 <= 0.1; 0.5 <= 1; 5 only in +Inf.
  t.same(
    ['0.01', '0.1', '1', '+Inf'].map((le) => find('x_duration_seconds_bucket', { le, backend: 'file' })?.value),
    [1, 2, 3, 4],
    'histogram buckets are cumulative and in order',
  );
  t.equal(find('x_duration_seconds_count', { backend: 'file' })?.value, 4);
  t.ok(Math.abs(Number(find('x_duration_seconds_sum', { backend: 'file' })?.value) - 5.555) < 1e-9, 'sum');
});

t.test('misuse is a programming error, not a silent wrong series', async (t) => {
  const registry = new Registry();
  const c = new Counter({ name: 'y_total', help: 'h', labelNames: ['a'], registers: [registry] });
  t.throws(() => c.inc({ b: 'x' } as never), /has no label b/);
  t.throws(() => c.inc({ a: 'x' }, -1), /cannot decrease/);
  t.throws(() => new Counter({ name: 'y_total', help: 'again', registers: [registry] }), /registered already/);
});
