/**
 * What an STS answer says, read from its XML: the credentials and the assumed role of a success
 * (`<ActionResponse><ActionResult>…`), or the type, code, message and request ID of an error
 * (`<ErrorResponse><Error>…`). Only those elements are read; anything else in the document is ignored.
 * Missing credential fields are left undefined here and judged by sts-credentials.ts, which refuses
 * an incomplete answer.
 */
import { type XmlElement, child, readXml, textAt } from './xml-reader.js';
import type { StsAction } from './form.js';

export interface StsCredentialFields {
  AccessKeyId?: string;
  SecretAccessKey?: string;
  SessionToken?: string;
  /** Undefined when absent or not an ISO 8601 timestamp. */
  Expiration?: Date;
}

export interface StsSuccess {
  credentials: StsCredentialFields;
  /** AssumedRoleUser/Arn: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION. */
  assumedRoleArn?: string;
  sourceIdentity?: string;
}

export interface StsErrorFields {
  type?: string;
  code?: string;
  message?: string;
  requestId?: string;
}

/** The answer as a document, or the reason it is not one (an HTML page, JSON, a truncated body). */
export type StsDocument = { root: XmlElement } | { unreadable: string };

export function readStsDocument(body: string): StsDocument {
  try {
    return { root: readXml(body) };
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

// ISO 8601 with seconds and a zone, as STS writes it (2026-11-22T17:00:00Z); fractions allowed.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

function timestamp(text: string | undefined): Date | undefined {
  if (text === undefined || !TIMESTAMP.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function present(fields: Record<string, string | Date | undefined>): Record<string, string | Date> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string | Date>;
}

/** The success fields of `action`'s answer, or undefined when the root is not `<ActionResponse>`. */
export function readSuccess(root: XmlElement, action: StsAction): StsSuccess | undefined {
  if (root.name !== `${action}Response`) return undefined;
  const result = child(root, `${action}Result`);
  const creds = child(result, 'Credentials');
  return {
    credentials: present({
      AccessKeyId: textAt(creds, 'AccessKeyId'),
      SecretAccessKey: textAt(creds, 'SecretAccessKey'),
      SessionToken: textAt(creds, 'SessionToken'),
      Expiration: timestamp(textAt(creds, 'Expiration')),
    }) as StsCredentialFields,
    ...present({ assumedRoleArn: textAt(result, 'AssumedRoleUser', 'Arn'), sourceIdentity: textAt(result, 'SourceIdentity') }),
  };
}

/** The error fields, or undefined when the root is not `<ErrorResponse>` with an `<Error>`. */
export function readError(root: XmlElement): StsErrorFields | undefined {
  if (root.name !== 'ErrorResponse') return undefined;
  const error = child(root, 'Error');
  if (error === undefined) return undefined;
  return present({
    type: textAt(error, 'Type'),
    code: textAt(error, 'Code'),
    message: textAt(error, 'Message'),
    requestId: textAt(root, 'RequestId') ?? textAt(error, 'RequestId'),
  }) as StsErrorFields;
}
