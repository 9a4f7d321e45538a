/**
 * A private network for the non-loopback-peer tests: a network namespace joined to this one by a veth
 * pair, with a 10.213.X.0/30 address on each end that exists only on that pair. Code running in the
 * namespace is "another host on the network": its packets reach this machine over a real link, from a
 * real non-loopback address. Needs root (CAP_NET_ADMIN) and iproute2; callers fall back when absent.
 *
 * This file is also the probe that runs inside the namespace (`ip netns exec NS node THIS --hostile-probe
 * JSON`), so the compiled test needs no other script.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface LinkPair {
  ns: string;
  /** The veth end in this (the test's) namespace. */
  hostIf: string;
  /** The veth end inside `ns`. */
  nsIf: string;
  /** Address of `hostIf`: this machine, as seen from the other host. */
  hostAddr: string;
  /** Address of `nsIf`: the other host. */
  nsAddr: string;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A /30 in 10.213.0.0/16 that no interface here uses yet (the pid spreads parallel runs apart). */
function freeSubnet(): number {
  const used = ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 250; i++) {
    const x = (process.pid + i) % 250;
    if (!used.includes(`10.213.${x}.`)) return x;
  }
  throw new Error('no free 10.213.X.0/30 subnet');
}

/** Removes everything createLinkPair made; safe to call on a partial setup or twice. */
export function destroyLinkPair(p: Pick<LinkPair, 'ns' | 'hostIf'>): void {
  // Deleting one end of a veth pair deletes the other; deleting the namespace would too.
  for (const args of [
    ['link', 'del', p.hostIf],
    ['netns', 'del', p.ns],
  ]) {
    try {
      ip(...args);
    } catch {
      // already gone
    }
  }
}

/**
 * Creates the namespace and the link. Throws (having cleaned up) if this process may not, with the
 * reason in the message. Register destroyLinkPair in teardown before calling: a half-made pair is
 * still cleaned up by name.
 */
export function linkPairNames(): Pick<LinkPair, 'ns' | 'hostIf' | 'nsIf'> {
  // Interface names are at most 15 characters; a pid has at most 7 digits.
  return { ns: `credport-hostile-${process.pid}`, hostIf: `cph${process.pid}h`, nsIf: `cph${process.pid}n` };
}

export function createLinkPair(): LinkPair {
  const names = linkPairNames();
  try {
    const x = freeSubnet();
    const p: LinkPair = { ...names, hostAddr: `10.213.${x}.1`, nsAddr: `10.213.${x}.2` };
    ip('netns', 'add', p.ns);
    ip('link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', p.nsIf);
    ip('link', 'set', p.nsIf, 'netns', p.ns);
    ip('addr', 'add', `${p.hostAddr}/30`, 'dev', p.hostIf);
    ip('link', 'set', p.hostIf, 'up');
    ip('-n', p.ns, 'addr', 'add', `${p.nsAddr}/30`, 'dev', p.nsIf);
    ip('-n', p.ns, 'link', 'set', p.nsIf, 'up');
    // The namespace's own loopback stays down, so 127.0.0.1 there is not local: it is routed over the link
    // to this machine, the way a hostile neighbour on a LAN would address our loopback.
    ip('-n', p.ns, 'route', 'add', '127.0.0.1/32', 'via', p.hostAddr, 'dev', p.nsIf);
    return p;
  } catch (err) {
    destroyLinkPair(names);
    const e = err as { stderr?: string; message: string };
    throw new Error(`cannot create a network namespace and veth pair: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * route_localnet lets packets addressed to 127.0.0.0/8 cross a real interface. Off by default (the kernel
 * drops them as martians); kube-proxy and some NAT set-ups turn it on. Set here only on the test's own
 * veth end (never on `all` in this namespace) and inside the test's namespace.
 */
export function setRouteLocalnet(p: LinkPair, on: boolean): void {
  const v = on ? '1' : '0';
  writeFileSync(`/proc/sys/net/ipv4/conf/${p.hostIf}/route_localnet`, v);
  // Inside the namespace, the sending side must also be allowed to put 127.0.0.1 on the wire.
  execFileSync('ip', [
    'netns',
    'exec',
    p.ns,
    'sh',
    '-c',
    `echo ${v} > /proc/sys/net/ipv4/conf/all/route_localnet && echo ${v} > /proc/sys/net/ipv4/conf/${p.nsIf}/route_localnet`,
  ]);
}

export interface Probe {
  host: string;
  port: number;
  /** Written once connected; the answer is collected until the server closes or `timeoutMs` passes. */
  payload?: string;
  timeoutMs: number;
}

export interface ProbeResult {
  connected: boolean;
  /** ECONNREFUSED, EHOSTUNREACH, ... or 'timeout' when nothing happened at all. */
  error?: string;
  response: string;
}

/** Runs the probes from inside the namespace (one node process, probes in parallel). */
export function probeFromNamespace(ns: string, probes: Probe[]): Promise<ProbeResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      fileURLToPath(import.meta.url),
      '--hostile-probe',
      JSON.stringify(probes),
    ]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`probe in ${ns} exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as ProbeResult[]);
      } catch {
        reject(new Error(`probe in ${ns} printed no result: ${out} ${err}`));
      }
    });
  });
}

function probeOne(p: Probe): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect(p.port, p.host);
    const chunks: Buffer[] = [];
    let connected = false;
    let error: string | undefined;
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const e = error ?? (timedOut && !connected ? 'timeout' : undefined);
      resolve({ connected, ...(e ? { error: e } : {}), response: Buffer.concat(chunks).toString('utf8') });
    };
    const timer = setTimeout(() => finish(true), p.timeoutMs);
    s.on('connect', () => {
      connected = true;
      if (p.payload) s.write(p.payload);
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    s.on('close', () => finish(false));
  });
}

// Entry point inside the namespace.
if (process.argv[2] === '--hostile-probe' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const probes = JSON.parse(process.argv[3] ?? '[]') as Probe[];
  void Promise.all(probes.map(probeOne)).then((r) => process.stdout.write(JSON.stringify(r)));
}
