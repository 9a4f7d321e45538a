/**
 * The AWS SDK clients only the admin commands use (`credport setup aws`, writing an issuer to S3 and
 * invalidating CloudFront) are optional peer dependencies: a plain install leaves them out, which keeps
 * it small. A command that needs one loads it through here, and when it is missing says so in one line
 * with the command that installs it, instead of Node's stack trace.
 */
import { fileURLToPath } from 'node:url';
import { CliError, EXIT } from './cli-error.js';

/** The optional packages and the range credport is built against (package.json peerDependencies). */
export const OPTIONAL_PACKAGES: Readonly<Record<string, string>> = {
  '@aws-sdk/client-cloudformation': '^3.1169.0',
  '@aws-sdk/client-cloudfront': '^3.1164.0',
  '@aws-sdk/client-s3': '^3.1169.0',
};

/**
 * How to install `spec` where this credport resolves packages from: `npm install -g` for a global
 * install (PREFIX/lib/node_modules/credport, whose imports also search PREFIX/lib/node_modules), else
 * `npm install` in the project that has credport in its node_modules (or in a checkout).
 */
export function installCommand(spec: string, moduleUrl: string = import.meta.url): string {
  const path = fileURLToPath(moduleUrl).replace(/\\/g, '/');
  const global = /\/lib\/node_modules\/credport\//.test(path) || /\/npm\/node_modules\/credport\//i.test(path);
  return global ? `npm install -g ${spec}` : `npm install ${spec}`;
}

/**
 * Node's error for `name` itself not being found, not for something inside it. Told by the message,
 * which names the package first: import hooks (a test runner's) may rethrow it without its code.
 */
export function isMissingPackage(err: unknown, name: string): boolean {
  const message = (err as { message?: unknown } | null)?.message;
  return (
    typeof message === 'string' &&
    (message.startsWith(`Cannot find package '${name}'`) || message.startsWith(`Cannot find module '${name}'`))
  );
}

/**
 * Runs `load` (a dynamic import of `name`, or of a module that imports it statically); if `name` is not
 * installed, throws a CliError naming `purpose` and the install command.
 */
export async function loadOptional<T>(
  name: string,
  purpose: string,
  load: () => Promise<T>,
  range = OPTIONAL_PACKAGES[name] ?? 'latest',
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!isMissingPackage(err, name)) throw err;
    throw new CliError(
      `${purpose} needs the npm package ${name}, which a plain credport install leaves out; install it with: ${installCommand(`${name}@${range}`)}`,
      EXIT.failure,
    );
  }
}
