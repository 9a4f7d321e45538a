// A role's trust policy as IAM evaluates it for STS, from the JSON document a template or a user wrote:
// statements with Effect, Principal and Action, and their Condition blocks. An explicit Deny wins, and
// without a matching Allow the answer is no. Only what trust policies use is supported; anything else
// is refused when the role is created (EmulatorConfigError), so a test never passes on an unread clause.

import { EmulatorConfigError, stringLike } from './iam.js';

type BaseOperator = 'StringEquals' | 'StringNotEquals' | 'StringLike' | 'StringNotLike' | 'ArnEquals' | 'ArnLike' | 'Bool' | 'Null';
const BASE_OPERATORS: readonly BaseOperator[] = [
  'StringEquals',
  'StringNotEquals',
  'StringLike',
  'StringNotLike',
  'ArnEquals',
  'ArnLike',
  'Bool',
  'Null',
];

interface PolicyCondition {
  set: 'ForAllValues' | 'ForAnyValue' | undefined;
  base: BaseOperator;
  ifExists: boolean;
  /** Lower case: IAM matches condition keys case-insensitively. */
  key: string;
  values: readonly string[];
}

interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  /** undefined: Principal "*". */
  principals: { federated: readonly string[]; service: readonly string[]; aws: readonly string[] } | undefined;
  actions: readonly string[];
  conditions: readonly PolicyCondition[];
}

export interface TrustPolicy {
  readonly statements: readonly PolicyStatement[];
}

/** Who is asking and what the request says: condition keys (any case) to their values. */
export interface TrustRequest {
  principal: { federated?: string; service?: string };
  actions: readonly string[];
  keys: ReadonlyMap<string, readonly string[]>;
}

const bad = (message: string): EmulatorConfigError => new EmulatorConfigError('ValidationError', `trust policy: ${message}`);

function stringList(raw: unknown, what: string): string[] {
  const list = typeof raw === 'string' || typeof raw === 'boolean' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0) throw bad(`${what} must be a string or a non-empty list of strings`);
  return list.map((v) => {
    if (typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') throw bad(`${what} must hold strings, not ${JSON.stringify(v)}`);
    return v;
  });
}

function parseOperator(name: string): Omit<PolicyCondition, 'key' | 'values'> {
  let rest = name;
  let set: PolicyCondition['set'];
  for (const prefix of ['ForAllValues', 'ForAnyValue'] as const) {
    if (rest.startsWith(`${prefix}:`)) {
      set = prefix;
      rest = rest.slice(prefix.length + 1);
    }
  }
  const ifExists = rest.endsWith('IfExists');
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  const base = BASE_OPERATORS.find((op) => op === rest);
  if (base === undefined)
    throw bad(`condition operator ${name} is not supported (${BASE_OPERATORS.join(', ')}, with ForAllValues:/ForAnyValue: and IfExists)`);
  return { set, base, ifExists };
}

function parseStatement(raw: unknown, index: number): PolicyStatement {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`Statement[${index}] must be an object`);
  const s = raw as Record<string, unknown>;
  for (const field of Object.keys(s)) {
    if (!['Sid', 'Effect', 'Principal', 'Action', 'Condition'].includes(field)) {
      // NotPrincipal, NotAction and Resource have no place in a trust policy that credport writes or reads.
      throw bad(`Statement[${index}].${field} is not supported in a trust policy`);
    }
  }
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw bad(`Statement[${index}].Effect must be Allow or Deny`);
  let principals: PolicyStatement['principals'];
  if (s.Principal !== '*') {
    if (typeof s.Principal !== 'object' || s.Principal === null) throw bad(`Statement[${index}].Principal must be "*" or an object`);
    const p = s.Principal as Record<string, unknown>;
    for (const kind of Object.keys(p)) {
      if (!['Federated', 'Service', 'AWS'].includes(kind)) throw bad(`Statement[${index}].Principal.${kind} is not supported`);
    }
    principals = {
      federated: p.Federated === undefined ? [] : stringList(p.Federated, 'Principal.Federated'),
      service: p.Service === undefined ? [] : stringList(p.Service, 'Principal.Service'),
      aws: p.AWS === undefined ? [] : stringList(p.AWS, 'Principal.AWS'),
    };
  }
  const actions = stringList(s.Action, `Statement[${index}].Action`);
  const conditions: PolicyCondition[] = [];
  if (s.Condition !== undefined) {
    if (typeof s.Condition !== 'object' || s.Condition === null) throw bad(`Statement[${index}].Condition must be an object`);
    for (const [operator, block] of Object.entries(s.Condition as Record<string, unknown>)) {
      const op = parseOperator(operator);
      if (typeof block !== 'object' || block === null) throw bad(`Condition ${operator} must be an object`);
      for (const [key, values] of Object.entries(block as Record<string, unknown>)) {
        conditions.push({ ...op, key: key.toLowerCase(), values: stringList(values, `Condition ${operator} ${key}`) });
      }
    }
  }
  return { effect: s.Effect, principals, actions, conditions };
}

export function parseTrustPolicy(document: unknown): TrustPolicy {
  const doc = typeof document === 'string' ? (JSON.parse(document) as unknown) : document;
  if (typeof doc !== 'object' || doc === null) throw bad('must be a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.Version !== '2012-10-17') throw bad('Version must be "2012-10-17" (the one that knows policy variables)');
  const raw = Array.isArray(d.Statement) ? d.Statement : [d.Statement];
  if (raw.length === 0 || raw[0] === undefined) throw bad('needs at least one Statement');
  return { statements: raw.map(parseStatement) };
}

function matches(base: BaseOperator, pattern: string, value: string): boolean {
  switch (base) {
    case 'StringEquals':
    case 'StringNotEquals':
      return pattern === value;
    case 'Bool':
      return pattern.toLowerCase() === value.toLowerCase();
    default:
      // StringLike, ArnLike and (as in IAM) ArnEquals take * and ? wildcards.
      return stringLike(pattern, value);
  }
}

function conditionHolds(c: PolicyCondition, keys: ReadonlyMap<string, readonly string[]>): boolean {
  const actual = keys.get(c.key);
  const present = actual !== undefined && actual.length > 0;
  if (c.base === 'Null') return c.values.every((v) => (v === 'true' ? !present : present));
  const negated = c.base === 'StringNotEquals' || c.base === 'StringNotLike';
  const one = (value: string): boolean => {
    const hit = c.values.some((pattern) => matches(c.base, pattern, value));
    return negated ? !hit : hit;
  };
  if (c.set === 'ForAllValues') return !present || actual.every(one);
  if (c.set === 'ForAnyValue') return present && actual.some(one);
  // A single-valued operator on an absent key: false, unless IfExists, or a negation (nothing to equal).
  if (!present) return c.ifExists || negated;
  return negated ? actual.every(one) : actual.some(one);
}

function principalMatches(s: PolicyStatement, request: TrustRequest): boolean {
  if (s.principals === undefined) return true;
  const { federated, service } = request.principal;
  return (
    (federated !== undefined && s.principals.federated.includes(federated)) ||
    (service !== undefined && s.principals.service.includes(service))
  );
}

function actionMatches(s: PolicyStatement, action: string): boolean {
  return s.actions.some((pattern) => stringLike(pattern.toLowerCase(), action.toLowerCase()));
}

/** Every requested action must be allowed by some statement and denied by none. */
export function trustPolicyAllows(policy: TrustPolicy, request: TrustRequest): boolean {
  const keys = new Map<string, readonly string[]>();
  for (const [k, v] of request.keys) keys.set(k.toLowerCase(), v);
  return request.actions.every((action) => {
    const applies = policy.statements.filter(
      (s) => principalMatches(s, request) && actionMatches(s, action) && s.conditions.every((c) => conditionHolds(c, keys)),
    );
    return applies.some((s) => s.effect === 'Allow') && !applies.some((s) => s.effect === 'Deny');
  });
}
