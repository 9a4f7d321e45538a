/**
 * Run by test/audit-log.test.ts inside a private mount namespace whose
 * argv[2] is a tiny tmpfs: fills the disk, records, frees the disk, records
 * again, and prints what happened as one JSON line.
 */
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../daemon/audit/audit-log.js';

const dir = process.argv[2]!;
const file = join(dir, 'credport', 'audit.log');
const errors: string[] = [];
const log = new AuditLog({ file, maxSize: 1024 * 1024, keep: 1, retryMs: 50, maxQueue: 20, onError: (e) => errors.push(e.message) });

const t0 = Date.UTC(2026, 10, 28);
const event = (pid: number) => ({
  time: new Date(t0),
  profile: 'dev',
  endpoint: 'ecs',
  accessKeyId: 'ASIAFAKE00000001',
  expiration: new Date(t0 + 3_600_000),
  uid: 0,
  pid,
  exe: '/usr/bin/curl',
  argv0: 'curl',
});

// One line first: the file then has a page with room, so the next big write is cut short part-way.
log.record(event(1000));
await log.flush();

const filler = join(dir, 'filler');
try {
  writeFileSync(filler, Buffer.alloc(1024 * 1024));
} catch {
  // ENOSPC: the disk is as full as one big write makes it
}
for (let i = 0; i < 10_000; i++) {
  try {
    appendFileSync(filler, Buffer.alloc(64));
  } catch {
    break;
  }
}

for (let i = 0; i < 50; i++) log.record(event(i));
await log.flush();
for (let i = 0; i < 3; i++) await log.flush(); // retries against a full disk: no new reports, no crash
rmSync(filler);
for (let i = 0; i < 100; i++) {
  await new Promise((r) => setTimeout(r, 50));
  if (readFileSync(file, 'utf8').includes('"dropped"')) break;
}
log.record(event(999));
await log.close();
process.stdout.write(`${JSON.stringify({ errors, content: readFileSync(file, 'utf8') })}\n`);
