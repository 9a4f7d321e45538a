/** What is checked before any AWS call: names, region, the CA certificate, credentials. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliError, EXIT } from '../../../cli/cli-error.js';

export const PARTS = ['issuer', 'role', 'rolesanywhere'] as const;
export type Part = (typeof PARTS)[number];

// CloudFormation: a letter, then letters, digits and hyphens, at most 128 characters in all.
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

export function stackNameFor(base: string, part: Part): string {
  return `${base}-${part}`;
}

export function checkStackName(base: string): void {
  const longest = stackNameFor(base, 'rolesanywhere');
  if (!STACK_NAME.test(base) || longest.length > 128) {
    throw new CliError(
      `--stack-name: "${base}" is not a usable CloudFormation stack name prefix`,
      EXIT.usage,
      'start with a letter; letters, digits and hyphens only; at most 114 characters',
    );
  }
}

export function checkRegion(region: string): void {
  if (!REGION.test(region)) throw new CliError(`--region: "${region}" is not an AWS region`, EXIT.usage, 'e.g. us-east-1 or eu-central-1');
}

/** The CA certificate as PEM, refused unless it is a CA certificate valid now. */
export function readCaCertificate(path: string, now = new Date()): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`--ca-cert: cannot read ${path}: ${(err as Error).message}`, EXIT.usage);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length !== 1) throw new CliError(`--ca-cert: ${path} must hold exactly one PEM certificate, found ${pems.length}`, EXIT.usage);
  const pem = pems[0] as string;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new CliError(`--ca-cert: ${path} is not a readable certificate: ${(err as Error).message}`, EXIT.usage);
  }
  if (!cert.ca) {
    throw new CliError(
      `--ca-cert: ${path} (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate (basicConstraints cA is not set)`,
      EXIT.usage,
      "give the CA that issued the device certificates, e.g. the one 'credport ca init' made",
    );
  }
  if (new Date(cert.validTo) <= now || new Date(cert.validFrom) > now) {
    throw new CliError(`--ca-cert: ${path} is not valid now (${cert.validFrom} to ${cert.validTo})`, EXIT.usage);
  }
  return `${pem}\n`;
}

/** The SDK's credential chain, asked once before the first call so that its absence is one clear line. */
export async function checkCredentials(resolve: () => Promise<unknown>): Promise<void> {
  try {
    await resolve();
  } catch (err) {
    throw new CliError(
      `no AWS credentials to deploy with: ${(err as Error).message.split('\n')[0]}`,
      EXIT.config,
      'set AWS_PROFILE (or run aws configure / aws sso login) for an account that may create these stacks',
    );
  }
}
