/**
 * Whether serving retains memory: the daemon runs in this process, loaded by autocannon in rounds, and
 * after each round a full collection shows the heap that is still reachable. The benchmark's memory row
 * reads RSS and heap from outside, with no collection forced, so its growth mixes retained memory with
 * garbage a major collection has not reached yet; this tells the two apart. Not part of `npm run bench`:
 * it needs --expose-gc, and the emulator and the load generator share this process's heap.
 *
 * Usage: node --expose-gc dist/scripts/bench/heap-retained.js [connections] [requests per round] [rounds] [--close]
 *   --close sends `Connection: close`, so every request is a new connection (peer lookup, audit, fastify).
 */
import { startDaemon } from '../../daemon/daemon.js';
import { loadConfig } from '../../daemon/config/load.js';
import { FileKeySigner } from '../../daemon/keys/file/signer.js';
import { createLogger } from '../../daemon/logging/logger.js';
import { runLoad } from './load.js';
import { createBenchEnv } from './setup.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('heap-retained: run it with node --expose-gc\n');
  process.exit(2);
}
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const connections = Number(args[0] ?? 64);
const perRound = Number(args[1] ?? 150_000);
const rounds = Number(args[2] ?? 4);
const close = process.argv.includes('--close');

/** Heap still reachable: two full collections first (the second sweeps what the first's finalizers freed). */
function retainedMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1048576;
}

const env = await createBenchEnv();
const daemon = await startDaemon({
  config: loadConfig(env.configFile, process.env),
  signer: FileKeySigner.open(env.keyPath),
  logger: createLogger({ level: 'warn', destination: { write: () => undefined } }),
});
try {
  const headers = { authorization: env.token(), ...(close ? { connection: 'close' } : {}) };
  const url = `${daemon.url}/v1/credentials`;
  await runLoad({ url, connections, amount: Math.min(perRound, 10_000), headers });
  const base = retainedMiB();
  process.stdout.write(`after a warm-up: ${base.toFixed(2)} MiB of heap retained\n`);
  let last = base;
  for (let i = 1; i <= rounds; i++) {
    const r = await runLoad({ url, connections, amount: perRound, headers });
    const now = retainedMiB();
    const perRequest = ((now - last) * 1048576) / Math.max(1, r.requests);
    process.stdout.write(
      `round ${i}: ${r.requests} requests (${r.non2xx} not 2xx, ${r.errors} errors), ${now.toFixed(2)} MiB retained, ${perRequest >= 0 ? '+' : ''}${perRequest.toFixed(1)} bytes per request\n`,
    );
    last = now;
  }
  process.stdout.write(`after ${rounds} rounds: ${(last - base).toFixed(2)} MiB more than after the warm-up\n`);
} finally {
  await daemon.close();
  await env.close();
}
