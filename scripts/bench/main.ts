/**
 * `npm run bench`: every measurement in one run, each against baselines
 * measured in the same run, printed as tables and written to
 * docs/benchmarks.md (between its markers) and to bench-results.json next to
 * the build. Missed performance targets are reported, not failed: this is a
 * measurement. The exit status is non-zero only when a correctness check
 * (the cold burst) fails or a measurement could not run.
 *
 *   npm run bench                        full: ~4-5 min on 2 cores
 *   npm run bench -- --quick             shorter runs, 100,000-request memory run; docs/ left alone
 *   npm run bench -- --only serving,signing
 *   CREDPORT_BENCH_REQUESTS=N npm run bench   requests for the memory run (or --requests N)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from './cli.js';
import { runColdBurst } from './cold-burst.js';
import { runIdle } from './idle.js';
import { runPeerConnections } from './peer-connections.js';
import { measurePeerLookup } from './peer-lookup.js';
import { runProfilesScale } from './profiles-scale.js';
import { machineInfo, renderMarkdown, servingVerdict, writeDocs, writeJson, type BenchReport } from './report.js';
import { runServing } from './serving.js';
import { CLI_PATH, OUT_ROOT, repoRoot } from './setup.js';
import { runSigning } from './signing.js';
import { runStartup } from './startup.js';

const SECTIONS = ['serving', 'cold-burst', 'startup', 'idle', 'profiles', 'signing', 'peer', 'cli'] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `Usage: npm run bench [-- options]

Options:
  --quick            shorter measurements (about 2 minutes); does not rewrite docs/benchmarks.md
  --only LIST        comma-separated sections: ${SECTIONS.join(', ')}
  --requests N       requests for the memory run (default 1,000,000; 100,000 with --quick;
                     or CREDPORT_BENCH_REQUESTS)
  --write-docs       rewrite docs/benchmarks.md even with --quick or --only
  --no-docs          never rewrite docs/benchmarks.md
  --json PATH        where to write the machine-readable results (default: bench-results.json in the build directory)
  -h, --help         this help`;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v.replace(/[_,]/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive whole number, not ${v}`);
  return n;
}

/** How a reader reproduces this run. */
function commandLine(argv: string[]): string {
  const env = process.env.CREDPORT_BENCH_REQUESTS ? `CREDPORT_BENCH_REQUESTS=${process.env.CREDPORT_BENCH_REQUESTS} ` : '';
  const viaNpm = process.env.npm_lifecycle_event === 'bench';
  const base = viaNpm ? 'npm run bench' : `node ${join('dist', 'scripts', 'bench', 'main.js')}`;
  const args = argv.filter((a) => a !== '--write-docs');
  return `${env}${base}${args.length ? `${viaNpm ? ' --' : ''} ${args.join(' ')}` : ''}`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      requests: { type: 'string' },
      'write-docs': { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const quick = values.quick === true;
  const only = values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of only ?? [])
    if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s} (sections: ${SECTIONS.join(', ')})`);
  const run = (s: Section): boolean => only === undefined || only.includes(s);
  const requests =
    positiveInt(values.requests, '--requests') ??
    positiveInt(process.env.CREDPORT_BENCH_REQUESTS, 'CREDPORT_BENCH_REQUESTS') ??
    (quick ? 100_000 : 1_000_000);
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: build first (npm run build)`);

  const started = performance.now();
  const report: BenchReport = {
    command: commandLine(argv),
    mode: quick ? 'quick' : 'full',
    startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    totalSeconds: 0,
    machine: machineInfo(),
    errors: {},
  };
  log(`credport benchmark, ${report.mode} mode: ${report.machine.cpus} × ${report.machine.cpuModel}, Node ${report.machine.node}`);

  const attempt = async (section: Section, title: string, fn: () => Promise<void>): Promise<void> => {
    if (!run(section)) return;
    log(`\n== ${title}`);
    const t0 = performance.now();
    try {
      await fn();
    } catch (err) {
      report.errors[section] = (err as Error).stack ?? String(err);
      log(`!! ${section} failed: ${(err as Error).message}`);
    }
    log(`   (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  };

  await attempt('serving', 'Serving: credport vs bare node:http vs nginx', async () => {
    report.serving = await runServing({ connections: [1, 16, 64], durationS: quick ? 1 : 2, rounds: quick ? 2 : 3, warmupS: 1, log });
  });
  await attempt('cold-burst', 'Cold burst: 1,000 concurrent requests, one upstream call', async () => {
    report.coldBurst = await runColdBurst({ requests: 1000, delayMs: 800, log });
    log(`  ${report.coldBurst.passed ? 'pass' : `FAIL: ${report.coldBurst.failures.join('; ')}`}`);
  });
  await attempt('startup', 'Start-up and memory', async () => {
    report.startup = await runStartup({ runs: quick ? 3 : 5, requests, log });
  });
  await attempt('idle', 'Idle: wake-ups and RSS beside an idle bare node server', async () => {
    report.idle = await runIdle({ windowS: quick ? 30 : 60, settleS: 6, log });
  });
  await attempt('profiles', 'Profiles: 1, 100, 1,000', async () => {
    report.scale = await runProfilesScale({ counts: [1, 100, 1000], lifetimeS: 20, log });
  });
  await attempt('signing', 'Signing: JWT mints per second', async () => {
    report.signing = await runSigning({ secondsEach: quick ? 1 : 3, log });
  });
  await attempt('peer', 'Peer identification: per lookup, and new connections per second with and without it', async () => {
    const lookups = await measurePeerLookup({ connections: [10, 1000], budgetMs: quick ? 250 : 500 });
    const connections = await runPeerConnections({ seconds: quick ? 2 : 3, rounds: quick ? 2 : 4, connections: 8, log });
    report.peer = { lookups, connections };
  });
  await attempt('cli', 'CLI commands vs node -e 0, and the production install', async () => {
    report.cli = await runCli({ runs: quick ? 5 : 15, install: !quick, log });
  });
  report.totalSeconds = (performance.now() - started) / 1000;

  const markdown = renderMarkdown(report);
  process.stdout.write(`\n${markdown}\n`);

  const jsonFile = values.json ?? join(OUT_ROOT, 'bench-results.json');
  writeJson(jsonFile, report);
  log(`results (JSON): ${jsonFile}`);
  const writeDoc = !values['no-docs'] && (values['write-docs'] || (!quick && only === undefined));
  if (writeDoc) {
    const doc = join(repoRoot(), 'docs', 'benchmarks.md');
    writeDocs(doc, markdown);
    log(`rewrote the generated section of ${doc}`);
  } else {
    log('docs/benchmarks.md left as it was (quick or partial run; --write-docs to rewrite it)');
  }

  // Missed targets are said loudly but do not fail the command; broken correctness does.
  if (report.serving) {
    for (const ep of ['ecs', 'imds'] as const) {
      const v = servingVerdict(report.serving, ep);
      if (v && !v.met)
        log(
          `NOTE: the serving target is not met for ${ep} (${v.ratio.toFixed(2)}× bare node, p99 ${v.p99Ms.toFixed(3)} ms); this is reported, not failed.`,
        );
    }
  }
  let status = 0;
  if (report.coldBurst && !report.coldBurst.passed) {
    log(`FAILED: cold burst: ${report.coldBurst.failures.join('; ')}`);
    status = 1;
  }
  for (const section of Object.keys(report.errors)) {
    log(`FAILED: ${section} could not be measured (see above)`);
    status = 1;
  }
  return status;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`bench: ${(err as Error).message ?? String(err)}`);
    process.exitCode = 2;
  },
);
