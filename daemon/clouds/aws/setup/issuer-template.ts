/**
 * The issuer stack: a private, versioned S3 bucket holding the discovery document and the JWKS, a
 * CloudFront distribution that alone may read it (origin access control), and the IAM OIDC provider for
 * the distribution's URL. The bucket is kept when the stack is deleted: it holds a fleet's keys.
 */
import { type Template, getAtt, ref, sub } from './cfn.js';
import type { PolicyDocument } from './policy.js';

export interface IssuerTemplateOptions {
  /** The JWT `aud`, registered as the provider's client id (sts.amazonaws.com unless told otherwise). */
  audience: string;
  /** Seconds CloudFront keeps the documents; a publish invalidates them anyway, a revoke waits at most this. */
  cacheSeconds?: number;
}

export const ISSUER_OUTPUTS = ['IssuerUrl', 'BucketName', 'DistributionId', 'OidcProviderArn'] as const;

function bucketPolicy(): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'OnlyTheIssuerDistributionReads',
        Effect: 'Allow',
        Principal: { Service: 'cloudfront.amazonaws.com' },
        Action: 's3:GetObject',
        Resource: sub('${IssuerBucket.Arn}/*'),
        Condition: {
          StringEquals: { 'AWS:SourceArn': sub('arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${IssuerDistribution}') },
        },
      },
      {
        Sid: 'TlsOnly',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [getAtt('IssuerBucket', 'Arn'), sub('${IssuerBucket.Arn}/*')],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ],
  };
}

export function issuerTemplate(o: IssuerTemplateOptions): Template {
  const cacheSeconds = o.cacheSeconds ?? 300;
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: 'credport OIDC issuer: private S3 bucket behind CloudFront, and the IAM OIDC provider for its URL',
    Resources: {
      IssuerBucket: {
        Type: 'AWS::S3::Bucket',
        // A fleet's published keys live here; deleting the stack must not take them along.
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
          BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
          // Every publish is a new version, so a bad one can be rolled back by restoring the previous.
          VersioningConfiguration: { Status: 'Enabled' },
          LifecycleConfiguration: {
            Rules: [{ Id: 'ForgetOldVersions', Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 90 } }],
          },
        },
      },
      IssuerOriginAccessControl: {
        Type: 'AWS::CloudFront::OriginAccessControl',
        Properties: {
          OriginAccessControlConfig: {
            Name: sub('${AWS::StackName}-oac'),
            Description: 'CloudFront signs its reads of the credport issuer bucket',
            OriginAccessControlOriginType: 's3',
            SigningBehavior: 'always',
            SigningProtocol: 'sigv4',
          },
        },
      },
      IssuerCachePolicy: {
        Type: 'AWS::CloudFront::CachePolicy',
        Properties: {
          CachePolicyConfig: {
            Name: sub('${AWS::StackName}-documents'),
            Comment: 'Issuer documents: short-lived in the cache so a revoked key leaves within minutes',
            MinTTL: 0,
            DefaultTTL: cacheSeconds,
            MaxTTL: cacheSeconds,
            ParametersInCacheKeyAndForwardedToOrigin: {
              CookiesConfig: { CookieBehavior: 'none' },
              HeadersConfig: { HeaderBehavior: 'none' },
              QueryStringsConfig: { QueryStringBehavior: 'none' },
              EnableAcceptEncodingGzip: true,
              EnableAcceptEncodingBrotli: true,
            },
          },
        },
      },
      IssuerDistribution: {
        Type: 'AWS::CloudFront::Distribution',
        Properties: {
          DistributionConfig: {
            Enabled: true,
            Comment: 'credport OIDC issuer',
            HttpVersion: 'http2and3',
            IPV6Enabled: true,
            PriceClass: 'PriceClass_100',
            Origins: [
              {
                Id: 'issuer-bucket',
                DomainName: getAtt('IssuerBucket', 'RegionalDomainName'),
                OriginAccessControlId: getAtt('IssuerOriginAccessControl', 'Id'),
                // Empty, as CloudFront requires when origin access control (not an identity) signs.
                S3OriginConfig: { OriginAccessIdentity: '' },
              },
            ],
            DefaultCacheBehavior: {
              TargetOriginId: 'issuer-bucket',
              ViewerProtocolPolicy: 'https-only',
              AllowedMethods: ['GET', 'HEAD'],
              CachedMethods: ['GET', 'HEAD'],
              CachePolicyId: ref('IssuerCachePolicy'),
              Compress: true,
            },
          },
        },
      },
      IssuerBucketPolicy: {
        Type: 'AWS::S3::BucketPolicy',
        Properties: { Bucket: ref('IssuerBucket'), PolicyDocument: bucketPolicy() },
      },
      IssuerProvider: {
        Type: 'AWS::IAM::OIDCProvider',
        // No ThumbprintList: IAM checks a CloudFront certificate against its own trusted CAs.
        Properties: { Url: sub('https://${IssuerDistribution.DomainName}'), ClientIdList: [o.audience] },
      },
    },
    Outputs: {
      IssuerUrl: { Description: 'The [oidc] issuer: JWTs name it in iss', Value: sub('https://${IssuerDistribution.DomainName}') },
      BucketName: { Description: 'Where credport oidc publish writes the issuer documents', Value: ref('IssuerBucket') },
      DistributionId: { Description: 'Invalidated after each publish', Value: ref('IssuerDistribution') },
      OidcProviderArn: { Description: 'The federated principal of role trust policies', Value: ref('IssuerProvider') },
    },
  };
}
