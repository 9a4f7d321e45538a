/**
 * A role stack: one IAM role that devices of one issuer assume with AssumeRoleWithWebIdentity. Its trust
 * policy pins the audience and either lists device subjects, or (a fleet) admits any device subject
 * whose JWT carries the required session tags, so the policy does not grow by one `sub` per device and
 * stays under IAM's trust policy size limit.
 */
import { type Template, type Value, getAtt, sub } from './cfn.js';
import { type ConditionBlock, type PolicyDocument, issuerHostPath, oneOrMany } from './policy.js';

export type RoleAdmission =
  /** These subjects, each named. */
  | { kind: 'subjects'; subjects: readonly string[] }
  /** Any subject matching `subjectPattern` (StringLike) whose token carries exactly these tags. */
  | { kind: 'tags'; tags: Readonly<Record<string, string>>; subjectPattern: string };

export interface RoleTemplateOptions {
  issuerUrl: string;
  audience: string;
  admission: RoleAdmission;
  /** Session tags the devices' JWTs carry ([oidc] principal_tags): the role must then allow sts:TagSession. */
  sessionTagKeys: readonly string[];
  /** IAM role name; CloudFormation names it when absent. */
  roleName?: string;
  maxSessionDurationSeconds: number;
  managedPolicyArns: readonly string[];
  /** The provider's ARN; default: the account's provider for the issuer's host and path. */
  providerArn?: string;
}

export const ROLE_OUTPUTS = ['RoleArn'] as const;

export function webIdentityTrustPolicy(o: RoleTemplateOptions): PolicyDocument {
  const host = issuerHostPath(o.issuerUrl);
  const equals: Record<string, Value> = { [`${host}:aud`]: o.audience };
  const condition: ConditionBlock = { StringEquals: equals };
  if (o.admission.kind === 'subjects') {
    equals[`${host}:sub`] = oneOrMany(o.admission.subjects);
  } else {
    condition.StringLike = { [`${host}:sub`]: o.admission.subjectPattern };
    for (const [key, value] of Object.entries(o.admission.tags)) equals[`aws:RequestTag/${key}`] = value;
  }
  // A token with tags needs sts:TagSession; naming the keys keeps a device from adding tags of its own.
  const tagged = o.sessionTagKeys.length > 0 || o.admission.kind === 'tags';
  if (tagged) {
    const keys = [...new Set([...o.sessionTagKeys, ...(o.admission.kind === 'tags' ? Object.keys(o.admission.tags) : [])])];
    condition['ForAllValues:StringEquals'] = { 'aws:TagKeys': keys };
  }
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'CredportDevices',
        Effect: 'Allow',
        Principal: { Federated: o.providerArn ?? sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:oidc-provider/${host}`) },
        Action: tagged ? ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'] : 'sts:AssumeRoleWithWebIdentity',
        Condition: condition,
      },
    ],
  };
}

export function roleTemplate(o: RoleTemplateOptions): Template {
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `credport role for devices of the issuer ${o.issuerUrl}`,
    Resources: {
      DeviceRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          ...(o.roleName !== undefined ? { RoleName: o.roleName } : {}),
          Description: 'Assumed by credport devices with a JWT signed by their device key',
          MaxSessionDuration: o.maxSessionDurationSeconds,
          AssumeRolePolicyDocument: webIdentityTrustPolicy(o),
          ...(o.managedPolicyArns.length > 0 ? { ManagedPolicyArns: [...o.managedPolicyArns] } : {}),
        },
      },
    },
    Outputs: {
      RoleArn: { Description: 'The role_arn of the aws-oidc profile', Value: getAtt('DeviceRole', 'Arn') },
    },
  };
}
