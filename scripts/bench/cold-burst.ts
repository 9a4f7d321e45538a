/**
 * Cold burst (a correctness check, not a speed figure): the daemon starts with
 * the emulator's STS answering only after a delay, so its start-up fetch is
 * still in flight when 1,000 requests arrive at once, each on its own
 * connection. Exactly one upstream call must be made, and every request must
 * get 200 with the same credentials. The credentials are compared by digest
 * and never printed.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { createBenchEnv, sleep, spawnDaemon, waitForPort } from './setup.js';

export interface ColdBurstResults {
  requests: number;
  delayMs: number;
  ok200: number;
  otherStatus: Record<string, number>;
  errors: number;
  distinctCredentials: number;
  stsCalls: number;
  /** Requests fully sent before the emulator had answered the (single) STS call. */
  sentWhileInFlight: number;
  /** From the first request sent to the last answer. */
  burstMs: number;
  passed: boolean;
  failures: string[];
}

export interface ColdBurstOptions {
  requests: number;
  delayMs: number;
  log: (line: string) => void;
}

export async function runColdBurst(o: ColdBurstOptions): Promise<ColdBurstResults> {
  const env = await createBenchEnv({ beforeStart: (e) => e.setFault({ kind: 'delay', ms: o.delayMs }, { service: 'sts' }) });
  const daemon = spawnDaemon(env.configFile);
  try {
    // Only a TCP connect: an HTTP request would be a request of its own. The fetch starts right after listen.
    await waitForPort(env.port, daemon);
    const token = env.token();
    const statuses = new Map<number, number>();
    const digests = new Set<string>();
    let errors = 0;
    let sentWhileInFlight = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from(
        { length: o.requests },
        () =>
          new Promise<void>((resolve) => {
            const req = request(
              `${env.url}/v1/credentials`,
              { headers: { authorization: token }, agent: false, timeout: 30_000 },
              (res) => {
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () => {
                  const status = res.statusCode ?? 0;
                  statuses.set(status, (statuses.get(status) ?? 0) + 1);
                  if (status === 200) digests.add(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
                  resolve();
                });
                res.on('error', () => {
                  errors++;
                  resolve();
                });
              },
            );
            req.on('finish', () => {
              if (env.emulator.stats.stsSuccesses === 0) sentWhileInFlight++;
            });
            req.on('timeout', () => req.destroy(new Error('timeout')));
            req.on('error', () => {
              errors++;
              resolve();
            });
            req.end();
          }),
      ),
    );
    const burstMs = performance.now() - t0;
    // Anything the daemon might still send upstream (a retry, a second fetch) would show up by now.
    await sleep(500);
    const stsCalls = env.emulator.stats.stsCalls;
    const ok200 = statuses.get(200) ?? 0;
    const otherStatus: Record<string, number> = {};
    for (const [s, n] of statuses) if (s !== 200) otherStatus[String(s)] = n;
    const failures: string[] = [];
    if (stsCalls !== 1) failures.push(`expected exactly 1 upstream (STS) call, saw ${stsCalls}`);
    if (ok200 !== o.requests)
      failures.push(`expected ${o.requests} answers 200, got ${ok200} (${JSON.stringify(otherStatus)}, ${errors} connection errors)`);
    if (digests.size !== 1) failures.push(`expected every request to get the same credentials, saw ${digests.size} distinct bodies`);
    if (sentWhileInFlight === 0)
      failures.push('no request was sent while the first fetch was in flight: the burst did not test single flight (raise the delay)');
    return {
      requests: o.requests,
      delayMs: o.delayMs,
      ok200,
      otherStatus,
      errors,
      distinctCredentials: digests.size,
      stsCalls,
      sentWhileInFlight,
      burstMs,
      passed: failures.length === 0,
      failures,
    };
  } finally {
    await daemon.stop();
    await env.close();
  }
}
