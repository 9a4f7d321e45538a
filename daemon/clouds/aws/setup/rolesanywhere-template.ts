/**
 * The Roles Anywhere stack: a trust anchor holding the CA certificate, a role that trusts the Roles
 * Anywhere service only for sessions from that anchor whose certificate has the given subject
 * attributes, and a profile naming the role.
 */
import { type Template, type Value, getAtt, sub } from './cfn.js';
import { type PolicyDocument, oneOrMany } from './policy.js';

export interface RolesAnywhereTemplateOptions {
  /** The CA certificate (PEM) that issued the device certificates. */
  caCertificatePem: string;
  /** Certificate subject attributes (CN, O, OU, ...) to the values admitted; empty admits any certificate of the CA. */
  subject: Readonly<Record<string, readonly string[]>>;
  roleName?: string;
  maxSessionDurationSeconds: number;
  /** What the Roles Anywhere profile grants at most (it caps the session it creates). */
  sessionDurationSeconds: number;
  managedPolicyArns: readonly string[];
}

export const ROLES_ANYWHERE_OUTPUTS = ['TrustAnchorArn', 'ProfileArn', 'RoleArn'] as const;

export function rolesAnywhereTrustPolicy(o: RolesAnywhereTemplateOptions, trustAnchorArn: Value): PolicyDocument {
  const equals: Record<string, Value> = {};
  for (const [attribute, values] of Object.entries(o.subject)) equals[`aws:PrincipalTag/x509Subject/${attribute}`] = oneOrMany(values);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'CredportCertificates',
        Effect: 'Allow',
        Principal: { Service: 'rolesanywhere.amazonaws.com' },
        // All three: Roles Anywhere tags the session with the certificate and sets its source identity.
        Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
        Condition: {
          ArnEquals: { 'aws:SourceArn': trustAnchorArn },
          ...(Object.keys(equals).length > 0 ? { StringEquals: equals } : {}),
        },
      },
    ],
  };
}

export function rolesAnywhereTemplate(o: RolesAnywhereTemplateOptions): Template {
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: 'credport IAM Roles Anywhere: trust anchor, role and profile',
    Resources: {
      TrustAnchor: {
        Type: 'AWS::RolesAnywhere::TrustAnchor',
        Properties: {
          Name: sub('${AWS::StackName}-anchor'),
          Enabled: true,
          Source: { SourceType: 'CERTIFICATE_BUNDLE', SourceData: { X509CertificateData: o.caCertificatePem.trim() } },
        },
      },
      DeviceRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          ...(o.roleName !== undefined ? { RoleName: o.roleName } : {}),
          Description: 'Assumed through IAM Roles Anywhere by credport devices with a certificate of the trust anchor',
          MaxSessionDuration: o.maxSessionDurationSeconds,
          AssumeRolePolicyDocument: rolesAnywhereTrustPolicy(o, getAtt('TrustAnchor', 'TrustAnchorArn')),
          ...(o.managedPolicyArns.length > 0 ? { ManagedPolicyArns: [...o.managedPolicyArns] } : {}),
        },
      },
      Profile: {
        Type: 'AWS::RolesAnywhere::Profile',
        Properties: {
          Name: sub('${AWS::StackName}-profile'),
          Enabled: true,
          RoleArns: [getAtt('DeviceRole', 'Arn')],
          DurationSeconds: o.sessionDurationSeconds,
        },
      },
    },
    Outputs: {
      TrustAnchorArn: { Description: 'trust_anchor_arn of the aws-rolesanywhere profile', Value: getAtt('TrustAnchor', 'TrustAnchorArn') },
      ProfileArn: { Description: 'profile_arn of the aws-rolesanywhere profile', Value: getAtt('Profile', 'ProfileArn') },
      RoleArn: { Description: 'role_arn of the aws-rolesanywhere profile', Value: getAtt('DeviceRole', 'Arn') },
    },
  };
}
