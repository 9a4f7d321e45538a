/**
 * The terminal log (daemon/logging/pretty-line.ts): readable, and never a channel for an escape
 * sequence that an upstream put into an error message.
 */
import t from 'tap';
import { prettyLine } from '../daemon/logging/pretty-line.js';

const plain = { colour: false, time: 'date' } as const;

t.test('a record becomes a header line and one indented line per field', async (t) => {
  const line = JSON.stringify({
    level: 40,
    time: Date.UTC(2026, 0, 2, 3, 4, 5),
    pid: 7,
    msg: 'refresh failed',
    profile: 'dev',
    code: 'AccessDenied',
  });
  const out = prettyLine(line, plain);
  t.match(out, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] WARN: refresh failed\n/);
  t.match(out, /\n {4}profile: "dev"\n/);
  t.match(out, /\n {4}code: "AccessDenied"\n$/);
  t.notMatch(out, /pid/, 'pid is not repeated on every line');
});

t.test('control characters from log content never reach the terminal', async (t) => {
  const evil = 'denied\x1b]0;owned\x07\x1b[2J\u009b31m';
  const line = JSON.stringify({ level: 50, time: 0, msg: evil, upstream: { message: evil } });
  for (const colour of [false, true]) {
    const out = prettyLine(line, { colour, time: 'clock' });
    t.notMatch(out, /\x07|\u009b|\x1b\]|\x1b\[2J/, `no escape of the content survives (colour ${colour})`);
    t.match(out, /denied/);
  }
  const coloured = prettyLine(line, { colour: true, time: 'clock' });
  t.match(coloured, '\x1b[31mERROR\x1b[0m', 'the colour codes of our own remain');
  t.notMatch(prettyLine(line, plain), /\x1b/, 'and without colour there are no escapes at all');
});

t.test('a newline in a message cannot forge a second log line', async (t) => {
  const out = prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'one\n[2026-01-01 00:00:00] INFO: forged' }), plain);
  t.equal(out.split('\n').filter((l) => l.startsWith('[')).length, 1, 'one header line');
});

t.test('a line that is not JSON is shown as it is, cleaned', async (t) => {
  t.equal(prettyLine('not json \x1b[2J', plain), 'not json \uFFFD[2J\n');
  t.equal(prettyLine('[1,2]', plain), '[1,2]\n');
});

t.test('an error shows its stack as lines', async (t) => {
  const out = prettyLine(
    JSON.stringify({ level: 50, time: 0, msg: 'boom', err: { type: 'Error', message: 'x', stack: 'Error: x\n    at f (a.js:1:1)' } }),
    plain,
  );
  t.match(out, /\n {4}err: Error: x\n {8}at f \(a\.js:1:1\)\n/);
});
