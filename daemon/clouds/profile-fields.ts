/**
 * Fields every cloud's profile tables share, so that `default` and `allow_executables` read the same
 * in every profile type.
 */
import { Type } from '@sinclair/typebox';

export const PROFILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

export const allowExecutablesField = () =>
  Type.Optional(
    Type.Array(Type.String({ pattern: '^/', minLength: 2 }), {
      minItems: 1,
      maxItems: 64,
      description:
        "Only processes running one of these executables (absolute paths, as /proc/PID/exe names them) get this profile's credentials. Attribution hygiene, not a boundary: a process of an allowed user can pose as any executable (docs/security.md).",
      expect: 'a list of absolute executable paths, e.g. ["/usr/bin/aws"]',
    }),
  );

export const defaultField = (what: string) =>
  Type.Optional(Type.Boolean({ description: `${what} Default: the profile named \`default\`, or the cloud's only profile.` }));
