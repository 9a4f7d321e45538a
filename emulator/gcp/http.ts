// Request plumbing shared by the Google handlers: the body limit and the media type of a request.

/** Google's request size is not documented; STS and IAM Credentials bodies are a few KiB at most. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The media type of a Content-Type header, lower-cased, without parameters; '' when absent. */
export function mediaType(header: string | string[] | undefined): string {
  return typeof header === 'string' ? (header.split(';')[0]?.trim().toLowerCase() ?? '') : '';
}
