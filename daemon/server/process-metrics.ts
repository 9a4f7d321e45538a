/**
 * The process's own figures (CPU, memory, descriptors), read when /metrics is scraped and at no other
 * time. prom-client's default metrics would do the same for most, but they also run an event-loop-delay
 * monitor on a 10 ms timer for the daemon's whole life: an idle daemon woke a hundred times a second to
 * measure a lag nobody asked for. Names match prom-client's defaults, so dashboards keep working.
 */
import { readdirSync } from 'node:fs';
import { Counter, Gauge, type Registry } from './prometheus.js';

/** Seconds since the epoch at which this process started (process.uptime is monotonic; good enough to a ms). */
const startTimeSeconds = Math.round(Date.now() / 1000 - process.uptime());

function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the descriptor of the listing itself
  } catch {
    return undefined;
  }
}

export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const registers = [registry];
  let cpu = process.cpuUsage();
  // One reading per scrape, shared by the three CPU series so that user + system = total.
  const readCpu = () => (cpu = process.cpuUsage());
  new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'User CPU time spent, in seconds',
    registers,
    collect() {
      readCpu();
      this.reset();
      this.inc(cpu.user / 1e6);
    },
  });
  new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: 'System CPU time spent, in seconds',
    registers,
    collect() {
      this.reset();
      this.inc(cpu.system / 1e6);
    },
  });
  new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'User and system CPU time spent, in seconds',
    registers,
    collect() {
      this.reset();
      this.inc((cpu.user + cpu.system) / 1e6);
    },
  });
  new Gauge({
    name: `${prefix}process_start_time_seconds`,
    help: 'Start time of the process since the Unix epoch, in seconds',
    registers,
  }).set(startTimeSeconds);
  new Gauge({
    name: `${prefix}process_resident_memory_bytes`,
    help: 'Resident memory size, in bytes',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: `${prefix}process_open_fds`,
    help: 'Open file descriptors (Linux)',
    registers,
    collect() {
      const n = openFds();
      if (n === undefined) this.reset();
      else this.set(n);
    },
  });
  const heap = { used: 0, total: 0, external: 0 };
  new Gauge({
    name: `${prefix}nodejs_heap_size_used_bytes`,
    help: 'V8 heap used, in bytes',
    registers,
    collect() {
      const m = process.memoryUsage();
      heap.used = m.heapUsed;
      heap.total = m.heapTotal;
      heap.external = m.external;
      this.set(heap.used);
    },
  });
  new Gauge({
    name: `${prefix}nodejs_heap_size_total_bytes`,
    help: 'V8 heap allocated, in bytes',
    registers,
    collect() {
      this.set(heap.total);
    },
  });
  new Gauge({
    name: `${prefix}nodejs_external_memory_bytes`,
    help: 'Memory of C++ objects bound to JavaScript objects, in bytes',
    registers,
    collect() {
      this.set(heap.external);
    },
  });
}
