/**
 * Run inside a private mount namespace with a tiny tmpfs at argv[2] (see
 * test/log-full-disk.test.ts): logs, fills the disk, keeps logging, frees the
 * space, logs again, then prints what the log file holds as JSON on stdout.
 * Its stderr is what the daemon's would be.
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../daemon/logging/logger.js';

const dir = process.argv[2] ?? '';
const file = join(dir, 'logs', 'credport.log');
const tick = () => new Promise((r) => setImmediate(r));
const logger = createLogger({ level: 'info', file, rotate: { size: '1m', keep: 2 } });

logger.info({ phase: 'before' }, 'line before the disk filled');
await new Promise<void>((r) => logger.flush(() => r()));
for (let i = 0; i < 20; i++) await tick();

// Fill the file system: bounded, the tmpfs is small.
const filler = join(dir, 'filler');
const fd = openSync(filler, 'w');
const chunk = Buffer.alloc(4096, 120);
let full = false;
for (let i = 0; i < 100_000 && !full; i++) {
  try {
    writeSync(fd, chunk);
  } catch (err) {
    full = (err as NodeJS.ErrnoException).code === 'ENOSPC';
    if (!full) throw err;
  }
}
closeSync(fd);

for (let i = 0; i < 2000; i++) {
  logger.info({ phase: 'during', i }, 'line while the disk is full');
  if (i % 20 === 0) for (let j = 0; j < 3; j++) await tick();
}
for (let j = 0; j < 20; j++) await tick();

unlinkSync(filler);
for (let i = 0; i < 5; i++) {
  logger.info({ phase: 'after', i }, 'line after space came back');
  await tick();
}
await new Promise<void>((r) => logger.flush(() => r()));
for (let i = 0; i < 50; i++) await tick();

const files = readdirSync(join(dir, 'logs'));
process.stdout.write(
  `${JSON.stringify({ full, files, mode: statSync(file).mode & 0o777, text: files.map((f) => readFileSync(join(dir, 'logs', f), 'utf8')).join('') })}\n`,
);
// The old transport's worker thread would keep the process alive.
process.exit(0);
