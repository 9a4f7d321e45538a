/**
 * The subject token of a URL-sourced external_account credential: Google's
 * client libraries GET this path with the header written into the credential
 * file, read `id_token` from the JSON, and do the STS exchange (and any
 * impersonation) themselves. The subject token is a device-signed JWT and the
 * protocol has no other lock, so the route requires the per-install secret.
 */
import type { FastifyPluginAsync } from 'fastify';
import { tokensEqual } from '../../../server/token.js';
import { CREDENTIALS_ROUTE, googleError, type GcpServing } from './serving.js';

export const SUBJECT_TOKEN_SECRET_HEADER = 'x-credport-subject-token-secret';

/** The field the credential file's `format.subject_token_field_name` names. */
export const SUBJECT_TOKEN_FIELD = 'id_token';

export function subjectTokenPath(profile: string): string {
  return `/gcp/v1/profiles/${encodeURIComponent(profile)}/subject-token`;
}

export interface SubjectTokenBody {
  id_token: string;
  /** Epoch seconds, as Google's executable and URL formats carry it. */
  expiration_time: number;
}

export const subjectTokenRoutes: FastifyPluginAsync<{ serving: GcpServing }> = async (app, { serving }) => {
  app.get<{ Params: { profile: string } }>('/gcp/v1/profiles/:profile/subject-token', { config: CREDENTIALS_ROUTE }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const presented = req.headers[SUBJECT_TOKEN_SECRET_HEADER];
    if (typeof presented !== 'string' || presented.length === 0) {
      return reply
        .code(401)
        .send(
          googleError(
            'unauthorized',
            `the ${SUBJECT_TOKEN_SECRET_HEADER} header is required; point GOOGLE_APPLICATION_CREDENTIALS at the file \`credport env\` writes`,
          ),
        );
    }
    if (!tokensEqual(presented, serving.subjectTokenSecret())) {
      return reply
        .code(401)
        .send(
          googleError(
            'unauthorized',
            `the ${SUBJECT_TOKEN_SECRET_HEADER} header does not match this install's secret; run \`credport env\` again`,
          ),
        );
    }
    const minted = await serving.subjectToken(req.params.profile, req.raw.socket);
    if (!minted.ok) return reply.code(minted.status).send(minted.body);
    const body: SubjectTokenBody = {
      [SUBJECT_TOKEN_FIELD]: minted.value.token,
      expiration_time: Math.floor(minted.value.expiration.getTime() / 1000),
    };
    return reply.type('application/json; charset=utf-8').send(body);
  });
};
