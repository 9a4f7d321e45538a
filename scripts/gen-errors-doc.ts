/** Writes docs/errors.md from the error catalogue (daemon/errors.ts); a test checks it is current. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROVIDER_ERRORS, SERVER_ERRORS } from '../daemon/errors.js';

export function renderErrorsReference(): string {
  const server = Object.entries(SERVER_ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.summary} |`);
  const provider = Object.entries(PROVIDER_ERRORS).map(([code, e]) => `| \`${code}\` | ${e.retryable ? 'yes' : 'no'} | ${e.summary} |`);
  return `# Error codes

<!-- Generated from daemon/errors.ts by \`npm run gen-docs\`; do not edit by hand. -->

Codes are stable: they are never renamed or reused, so scripts may match on them.

## What an endpoint answers

Every refusal and failure of credport's own endpoints is a JSON body \`{"Code": ..., "Message": ...}\`
with one of these codes. Google's endpoints answer in Google's shape (\`{"error", "error_description"}\`)
with the codes their protocol defines.

| code | HTTP status | meaning |
| --- | --- | --- |
${server.join('\n')}

## Why a profile has no credentials

\`/health\`, \`credport status\` and a 503 body name the last refresh error of a profile. When the
upstream refused, its own code is kept (AWS's \`AccessDenied\`, Google's \`invalid_grant\`); when the
reason is credport's, it is one of these.

| code | a retry can help | meaning |
| --- | --- | --- |
${provider.join('\n')}
`;
}

export const ERRORS_PATH = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(ERRORS_PATH, renderErrorsReference());
  process.stdout.write(`wrote ${ERRORS_PATH}\n`);
}
