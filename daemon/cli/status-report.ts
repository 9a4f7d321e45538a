/** What `credport status` prints from the daemon's /health: shared by the command and its slim path (cli/fast/). */
import type { HealthReport } from '../server/health-report.js';
import { CliError, EXIT } from './cli-error.js';
import type { DaemonReply } from './daemon-client.js';
import type { CliIo } from './io.js';

function ago(iso: string | null, now: number): string {
  if (!iso) return '-';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(s);
  const text =
    abs >= 3600
      ? `${Math.floor(abs / 3600)}h${Math.floor((abs % 3600) / 60)}m`
      : abs >= 60
        ? `${Math.floor(abs / 60)}m${abs % 60}s`
        : `${abs}s`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

export function renderStatus(h: HealthReport, now: number): string {
  const rows = [['PROFILE', 'STATE', 'PRINCIPAL', 'EXPIRES', 'LAST REFRESH', 'NEXT REFRESH', 'LAST ERROR']];
  for (const [name, p] of Object.entries(h.profiles)) {
    rows.push([
      name + (name === h.defaultProfile ? '*' : ''),
      p.state,
      p.principal,
      ago(p.expiration, now),
      ago(p.lastRefresh, now),
      p.refresh === 'on-demand' ? 'on demand' : ago(p.nextRefresh, now),
      p.lastError ? `${p.lastError.code}: ${p.lastError.message}`.slice(0, 80) : '-',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const table = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
  const warnings = (h.warnings ?? []).map((w) => `warning: ${w}\n`).join('');
  const reload = h.config?.lastError
    ? `\nlast reload REJECTED at ${h.config.lastError.at} (running config kept): ${h.config.lastError.message}\n`
    : '';
  const restart = h.config?.needsRestart?.length
    ? `\nrestart needed: ${h.config.needsRestart.join(', ')} changed in the config; the daemon still runs with the old value until 'credport service restart' (or a restart of 'credport serve')\n`
    : '';
  return `credport ${h.version}: ${h.status}, up ${h.uptimeSeconds}s, key ${h.key.backend} (${h.key.thumbprint.slice(0, 12)}…)\n\n${table}\n\n* default profile (for AWS: served at /v1/credentials and through IMDS)\n${restart}${reload}${warnings ? `\n${warnings}` : ''}`;
}

/** Prints a /health reply that came back (reachable), and returns status's exit code for it. */
export function printHealth(reply: DaemonReply & { reachable: true }, base: string, json: boolean, io: CliIo): number {
  const report = reply.body as HealthReport;
  if (typeof report !== 'object' || report === null || !('profiles' in report)) {
    throw new CliError(`${base}/health did not answer like credport (HTTP ${reply.status})`, EXIT.failure);
  }
  io.stdout(json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report, Date.now()));
  return report.status === 'ok' ? EXIT.ok : EXIT.failure;
}
