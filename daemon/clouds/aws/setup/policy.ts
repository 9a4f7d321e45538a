/** IAM policy documents as the setup templates write them (trust policies and the bucket policy). */
import type { Value } from './cfn.js';

export type ConditionBlock = Record<string, Record<string, Value>>;

export type Statement = {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal: '*' | { Federated?: Value; Service?: string | string[]; AWS?: Value };
  Action: string | string[];
  Resource?: Value;
  Condition?: ConditionBlock;
};

export type PolicyDocument = {
  Version: '2012-10-17';
  Statement: Statement[];
};

/** host[:port]/path of an issuer URL: the prefix of its condition keys and the tail of its provider ARN. */
export function issuerHostPath(issuerUrl: string): string {
  return issuerUrl.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/** The statement value as IAM prints it: one value bare, several as a list. */
export function oneOrMany(values: readonly string[]): string | string[] {
  return values.length === 1 ? (values[0] as string) : [...values];
}
