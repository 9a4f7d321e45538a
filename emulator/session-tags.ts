// The https://aws.amazon.com/tags claim of a web identity token, read as STS reads it: principal_tags
// (each value a one-element list) become session tags, transitive_tag_keys must name some of them.
// A malformed claim is the token's fault (InvalidIdentityToken), as STS reports it.

import { StsError } from './xml.js';

export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';
const MAX_TAGS = 50;
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export interface SessionTags {
  /** Tag key (as sent) to value. */
  tags: ReadonlyMap<string, string>;
  transitiveKeys: readonly string[];
}

const invalid = (message: string): StsError => new StsError(400, 'InvalidIdentityToken', `Invalid session tags claim: ${message}`);

export function sessionTagsOf(claims: Readonly<Record<string, unknown>>): SessionTags | undefined {
  const claim = claims[AWS_TAGS_CLAIM];
  if (claim === undefined) return undefined;
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) throw invalid('must be an object');
  const { principal_tags: principal, transitive_tag_keys: transitive } = claim as Record<string, unknown>;
  if (typeof principal !== 'object' || principal === null || Array.isArray(principal)) throw invalid('principal_tags must be an object');
  const tags = new Map<string, string>();
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(principal)) {
    if (key.length < 1 || key.length > 128 || !TAG_TEXT.test(key))
      throw invalid(`tag key ${JSON.stringify(key.slice(0, 130))} is not valid`);
    if (!Array.isArray(value) || value.length !== 1 || typeof value[0] !== 'string') {
      throw invalid(`the value of ${key} must be a list of one string`);
    }
    const v = value[0];
    if (v.length > 256 || !TAG_TEXT.test(v)) throw invalid(`the value of ${key} is not valid`);
    // Session tag keys are case-insensitive: Team and team would be one tag twice.
    if (seen.has(key.toLowerCase())) throw invalid(`tag key ${key} appears twice (keys are case-insensitive)`);
    seen.add(key.toLowerCase());
    tags.set(key, v);
  }
  if (tags.size > MAX_TAGS) throw invalid(`${tags.size} tags; at most ${MAX_TAGS}`);
  let transitiveKeys: string[] = [];
  if (transitive !== undefined) {
    if (!Array.isArray(transitive) || !transitive.every((k): k is string => typeof k === 'string')) {
      throw invalid('transitive_tag_keys must be a list of strings');
    }
    for (const k of transitive) if (!seen.has(k.toLowerCase())) throw invalid(`transitive tag key ${k} is not a principal tag`);
    transitiveKeys = transitive;
  }
  return { tags, transitiveKeys };
}
