/**
 * The slice of CloudFormation's template language the setup stacks use, typed so that a template is
 * built as an object (and checked by the compiler) and only then turned into JSON.
 */

export type Intrinsic = { Ref: string } | { 'Fn::GetAtt': [string, string] } | { 'Fn::Sub': string };
export type Value = string | number | boolean | Intrinsic | Value[] | { [key: string]: Value };

export interface Resource {
  Type: string;
  Properties: Record<string, Value>;
  DeletionPolicy?: 'Retain' | 'Delete';
  UpdateReplacePolicy?: 'Retain' | 'Delete';
  Metadata?: Record<string, Value>;
}

export interface Output {
  Description: string;
  Value: Value;
}

export interface Template {
  AWSTemplateFormatVersion: '2010-09-09';
  Description: string;
  Resources: Record<string, Resource>;
  Outputs: Record<string, Output>;
}

export const ref = (name: string): Intrinsic => ({ Ref: name });
export const getAtt = (resource: string, attribute: string): Intrinsic => ({ 'Fn::GetAtt': [resource, attribute] });
export const sub = (text: string): Intrinsic => ({ 'Fn::Sub': text });

/** Tags every stack resource carries, so a stack credport made can be told from one it did not. */
export const CREDPORT_TAG_KEY = 'credport:stack';

export function templateJson(template: Template): string {
  return `${JSON.stringify(template, null, 2)}\n`;
}
