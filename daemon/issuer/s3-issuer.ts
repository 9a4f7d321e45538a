/**
 * The issuer's documents in an S3 bucket, changed by conditional writes (see conditional-update.ts).
 * Loaded only by the commands that publish: it brings the S3 SDK. Every call goes through the
 * bounded handler, so a bucket that answers slowly or with a huge object costs a deadline and a
 * body cap, never a hang or the memory of the machine.
 */
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import {
  DISCOVERY_PATH,
  IssuerExportError,
  type DiscoveryDocument,
  type Jwks,
  jwksRelativePath,
  parseJsonDocument,
  parseJwks,
  reconcileDiscovery,
  renderDocument,
} from '../identity/issuer-documents.js';
import { BoundedSdkHandler } from '../providers/upstream/sdk-handler.js';
import { sanitizeCode, sanitizeMessage } from '../providers/upstream/error-text.js';
import { DEFAULT_RETRY, type RetryPolicy, updateConditionally, type Versioned } from './conditional-update.js';
import { formatS3Location, objectKey, type S3Location } from './s3-location.js';

/** Far above any JWKS IAM accepts (100 keys of about 200 bytes), far below anything harmful. */
const MAX_OBJECT_BYTES = 1024 * 1024;
const DEADLINE_MS = 15_000;

/**
 * Public documents: a resolver (CloudFront, STS) may keep them this long. STS keeps its own copy of
 * a JWKS for a while besides, so a shorter value would not make a revocation visible sooner.
 */
const CACHE_CONTROL = 'public, max-age=300';

export class S3IssuerError extends Error {
  override readonly name = 'S3IssuerError';
}

export interface S3Options {
  region?: string;
  /** Another S3 endpoint (MinIO, a test server): path-style addressing, since those rarely resolve bucket host names. */
  endpoint?: string;
}

type SdkHandler = BoundedSdkHandler;

/** The bounded handler hands the SDK bytes; S3's object bodies are streams to the SDK, so wrap them. */
function streamingHandler(service: string): SdkHandler {
  const inner = new BoundedSdkHandler(service, { deadlineMs: DEADLINE_MS, maxBodyBytes: MAX_OBJECT_BYTES });
  const outer = Object.create(inner) as SdkHandler;
  outer.handle = async (request, options) => {
    const r = await inner.handle(request, options);
    const body = r.response.body as Uint8Array;
    (r.response as { body: unknown }).body = Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
    return r;
  };
  return outer;
}

export function s3Client(o: S3Options): S3Client {
  return new S3Client({
    region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // A bucket in another region than the one guessed answers with a redirect the SDK follows.
    followRegionRedirects: true,
    requestHandler: streamingHandler('S3'),
    // Checksums only where S3 requires them: the bodies are small JSON, and some S3-compatible
    // servers do not know the newer checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
  });
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** One line naming the object and what S3 said; never the request's credentials. */
function s3Error(err: unknown, what: string): Error {
  if (err instanceof IssuerExportError || err instanceof S3IssuerError) return err;
  if (err instanceof S3ServiceException) {
    return new S3IssuerError(`${what}: ${sanitizeCode(err.name)} (HTTP ${statusOf(err) ?? '?'}): ${sanitizeMessage(err.message)}`);
  }
  const e = err as Error;
  if (e.name === 'CredentialsProviderError')
    return new S3IssuerError(
      `${what}: no AWS credentials (${sanitizeMessage(e.message)}); set AWS_PROFILE or run where a role is available`,
    );
  return new S3IssuerError(`${what}: ${sanitizeCode(e.name)}: ${sanitizeMessage(e.message)}`);
}

export interface S3Document {
  text: string | undefined;
  etag: string | undefined;
}

export class S3Issuer {
  constructor(
    readonly client: S3Client,
    readonly location: S3Location,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  describe(): string {
    return formatS3Location(this.location);
  }

  url(relative: string): string {
    return `s3://${this.location.bucket}/${objectKey(this.location, relative)}`;
  }

  async get(relative: string): Promise<S3Document> {
    const key = objectKey(this.location, relative);
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: key }));
    } catch (err) {
      if (statusOf(err) === 404 && (err as Error).name === 'NoSuchKey') return { text: undefined, etag: undefined };
      throw s3Error(err, `cannot read ${this.url(relative)}`);
    }
    if ((out.ContentLength ?? 0) > MAX_OBJECT_BYTES)
      throw new S3IssuerError(`${this.url(relative)} is larger than ${MAX_OBJECT_BYTES} bytes; it is not an issuer document`);
    const text = (await out.Body?.transformToString('utf8')) ?? '';
    if (!out.ETag) throw new S3IssuerError(`${this.url(relative)} came without an ETag; cannot write it back safely`);
    return { text, etag: out.ETag };
  }

  /** False when the object changed since `etag` (or exists, when `etag` is undefined). */
  async putIf(relative: string, text: string, etag: string | undefined): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: objectKey(this.location, relative),
          Body: text,
          ContentType: 'application/json',
          CacheControl: CACHE_CONTROL,
          ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
        }),
      );
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 412 || status === 409) return false;
      throw s3Error(err, `cannot write ${this.url(relative)}`);
    }
  }

  /** The discovery document to keep, and whether it must still be written. */
  private async discovery(issuer: string): Promise<{ doc: DiscoveryDocument; missing: boolean }> {
    const got = await this.get(DISCOVERY_PATH);
    const current =
      got.text === undefined
        ? undefined
        : (parseJsonDocument(got.text, this.url(DISCOVERY_PATH), 'discovery document') as Partial<DiscoveryDocument>);
    return { doc: reconcileDiscovery(current, issuer, this.url(DISCOVERY_PATH)), missing: got.text === undefined };
  }

  /**
   * Applies `change` to the live JWKS by conditional write, then writes the discovery document if
   * there is none. A JWKS that is not one (malformed, foreign) stops everything before any write.
   */
  async update(issuer: string, change: (jwks: Jwks | undefined) => Jwks): Promise<S3UpdateResult> {
    const { doc, missing } = await this.discovery(issuer);
    const jwksPath = jwksRelativePath(issuer, doc.jwks_uri, this.describe());
    let before: string | undefined;
    const outcome = await updateConditionally<Jwks>(
      {
        read: async (): Promise<Versioned<Jwks>> => {
          const got = await this.get(jwksPath);
          before = got.text;
          return { value: got.text === undefined ? undefined : parseJwks(got.text, this.url(jwksPath)), etag: got.etag };
        },
        write: (value, etag) => this.putIf(jwksPath, renderDocument(value), etag),
      },
      change,
      (_, next) => before === renderDocument(next),
      this.retry,
    );
    let discoveryWritten = false;
    if (missing) {
      discoveryWritten = await this.putIf(DISCOVERY_PATH, renderDocument(doc), undefined);
      // Another device wrote it first: it must be for this issuer too.
      if (!discoveryWritten) await this.discovery(issuer);
    }
    return {
      jwks: outcome.value,
      changed: outcome.changed,
      attempts: outcome.attempts,
      discoveryWritten,
      paths: [DISCOVERY_PATH, jwksPath],
      jwksUrl: this.url(jwksPath),
    };
  }
}

export interface S3UpdateResult {
  jwks: Jwks;
  changed: boolean;
  attempts: number;
  discoveryWritten: boolean;
  /** Below the issuer, for the CloudFront invalidation. */
  paths: string[];
  jwksUrl: string;
}

export function openS3Issuer(location: S3Location, o: S3Options, retry?: RetryPolicy): S3Issuer {
  return new S3Issuer(s3Client(o), location, retry);
}
