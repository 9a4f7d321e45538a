/**
 * The idle daemon, as a laptop sees it: how often it wakes and how much memory it holds when nobody asks
 * it anything and no refresh is due. Wake-ups are the voluntary context switches of all its threads
 * (/proc/PID/task/N/status) over a fixed window: each is the process going back to sleep after something
 * woke it (a timer, a worker thread). Beside it, in the same run and the same window, an idle bare
 * node:http server: the floor node itself sets. Two windows one after the other: the first minute after
 * start-up holds V8's collection of start-up garbage (a burst of helper-thread wake-ups some 20-30 s in,
 * bare node's too); the second is the steady state, where a laptop daemon spends its hours.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { startBareServer } from './baselines.js';
import { createBenchEnv, readRssBytes, sleep, spawnDaemon, waitFor200 } from './setup.js';

export interface IdleFigures {
  /** Voluntary context switches per second, all threads, over the window. */
  wakeupsPerS: number | undefined;
  rssBytes: number | undefined;
}

export interface IdleResults {
  windowS: number;
  /** The first window, right after start-up: V8 collects start-up garbage (with its helper threads) in it. */
  afterStart: { daemon: IdleFigures; bare: IdleFigures };
  /** The window after that: the steady state a laptop daemon spends its hours in. The targets apply here. */
  daemon: IdleFigures;
  bare: IdleFigures;
}

/** Sum of voluntary_ctxt_switches over every thread of a process (Linux); undefined elsewhere. */
export function voluntarySwitches(pid: number): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let sum = 0;
  for (const t of tasks) {
    try {
      const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'));
      if (m?.[1]) sum += Number(m[1]);
    } catch {
      // A thread that ended between the listing and the read switches no more.
    }
  }
  return sum;
}

/** Both processes are sampled over the same window, so both see the same machine. */
async function watch(pids: number[], windowS: number): Promise<IdleFigures[]> {
  const before = pids.map(voluntarySwitches);
  const t0 = performance.now();
  await sleep(windowS * 1000);
  const seconds = (performance.now() - t0) / 1000;
  return pids.map((pid, i) => {
    const a = before[i];
    const b = voluntarySwitches(pid);
    return { wakeupsPerS: a === undefined || b === undefined ? undefined : (b - a) / seconds, rssBytes: readRssBytes(pid) };
  });
}

export async function runIdle(o: { windowS: number; settleS: number; log: (line: string) => void }): Promise<IdleResults> {
  // Credentials live an hour at the emulator: no refresh falls in the window.
  const env = await createBenchEnv();
  try {
    const daemon = spawnDaemon(env.configFile);
    try {
      await waitFor200(`${env.url}/health`, { child: daemon, pollMs: 5 });
      await waitFor200(`${env.url}/v1/credentials`, { headers: { authorization: env.token() }, child: daemon, pollMs: 5 });
      const bare = await startBareServer(env.dir, [
        { path: '/', status: 200, headers: [['content-type', 'application/json']], body: Buffer.from('{}') },
      ]);
      try {
        await waitFor200(bare.url, { child: bare.child, pollMs: 5 });
        // The first connections' keep-alive ends first.
        await sleep(o.settleS * 1000);
        const fmt = (f: IdleFigures) =>
          `${f.wakeupsPerS?.toFixed(2) ?? '?'} wake-ups/s, RSS ${f.rssBytes === undefined ? '?' : (f.rssBytes / 2 ** 20).toFixed(1)} MiB`;
        const [d0, b0] = await watch([daemon.pid, bare.child.pid], o.windowS);
        o.log(`  idle, first ${o.windowS} s: credport ${fmt(d0!)}; bare node:http ${fmt(b0!)}`);
        const [d, b] = await watch([daemon.pid, bare.child.pid], o.windowS);
        o.log(`  idle, next ${o.windowS} s: credport ${fmt(d!)}; bare node:http ${fmt(b!)}`);
        return { windowS: o.windowS, afterStart: { daemon: d0!, bare: b0! }, daemon: d!, bare: b! };
      } finally {
        await bare.stop();
      }
    } finally {
      await daemon.stop();
    }
  } finally {
    await env.close();
  }
}
