// STS speaks the awsQuery protocol: XML bodies in a fixed element order. Everything that reaches these
// bodies (session names, subjects, audiences, even token-derived error details) may carry markup, so
// every value is escaped here and nowhere else.

export const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';

export type StsFaultType = 'Sender' | 'Receiver';

/** An STS error as the wire carries it; thrown by the handlers and rendered by errorBody(). */
export class StsError extends Error {
  override readonly name = 'StsError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: StsFaultType = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
  }
}

// XML 1.0 cannot carry most C0 controls, lone surrogates or U+FFFE/U+FFFF even as character references,
// so they are replaced rather than escaped; a strict client parser would otherwise reject the body.
const NOT_XML_CHAR =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeXml(value: string): string {
  return value.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"'\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      // A raw CR would be normalised away by the parser; keep it if a message ever contains one.
      default:
        return '&#13;';
    }
  });
}

function el(name: string, text: string): string {
  return `<${name}>${escapeXml(text)}</${name}>`;
}

export interface AssumeRoleWithWebIdentityResult {
  subject: string;
  audience: string;
  assumedRoleArn: string;
  assumedRoleId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  provider: string;
}

/** STS writes Expiration as ISO 8601 UTC without fractional seconds, e.g. 2026-11-22T17:00:00Z. */
export function stsTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function successBody(result: AssumeRoleWithWebIdentityResult, requestId: string): string {
  return [
    `<AssumeRoleWithWebIdentityResponse xmlns="${STS_XMLNS}">`,
    '  <AssumeRoleWithWebIdentityResult>',
    `    ${el('SubjectFromWebIdentityToken', result.subject)}`,
    `    ${el('Audience', result.audience)}`,
    '    <AssumedRoleUser>',
    `      ${el('Arn', result.assumedRoleArn)}`,
    `      ${el('AssumedRoleId', result.assumedRoleId)}`,
    '    </AssumedRoleUser>',
    '    <Credentials>',
    `      ${el('SessionToken', result.sessionToken)}`,
    `      ${el('SecretAccessKey', result.secretAccessKey)}`,
    `      ${el('Expiration', stsTimestamp(result.expiration))}`,
    `      ${el('AccessKeyId', result.accessKeyId)}`,
    '    </Credentials>',
    `    ${el('Provider', result.provider)}`,
    '  </AssumeRoleWithWebIdentityResult>',
    '  <ResponseMetadata>',
    `    ${el('RequestId', requestId)}`,
    '  </ResponseMetadata>',
    '</AssumeRoleWithWebIdentityResponse>',
    '',
  ].join('\n');
}

export function errorBody(error: { type: StsFaultType; code: string; message: string }, requestId: string): string {
  return [
    `<ErrorResponse xmlns="${STS_XMLNS}">`,
    '  <Error>',
    `    ${el('Type', error.type)}`,
    `    ${el('Code', error.code)}`,
    `    ${el('Message', error.message)}`,
    '  </Error>',
    `  ${el('RequestId', requestId)}`,
    '</ErrorResponse>',
    '',
  ].join('\n');
}

export interface AssumeRoleResult {
  assumedRoleArn: string;
  assumedRoleId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export function assumeRoleBody(result: AssumeRoleResult, requestId: string): string {
  return [
    `<AssumeRoleResponse xmlns="${STS_XMLNS}">`,
    '  <AssumeRoleResult>',
    '    <AssumedRoleUser>',
    `      ${el('AssumedRoleId', result.assumedRoleId)}`,
    `      ${el('Arn', result.assumedRoleArn)}`,
    '    </AssumedRoleUser>',
    '    <Credentials>',
    `      ${el('AccessKeyId', result.accessKeyId)}`,
    `      ${el('SecretAccessKey', result.secretAccessKey)}`,
    `      ${el('SessionToken', result.sessionToken)}`,
    `      ${el('Expiration', stsTimestamp(result.expiration))}`,
    '    </Credentials>',
    '  </AssumeRoleResult>',
    '  <ResponseMetadata>',
    `    ${el('RequestId', requestId)}`,
    '  </ResponseMetadata>',
    '</AssumeRoleResponse>',
    '',
  ].join('\n');
}
