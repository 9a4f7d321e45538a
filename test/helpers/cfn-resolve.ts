/**
 * Resolves the intrinsic functions a generated template uses (Ref, Fn::Sub, Fn::GetAtt) the way
 * CloudFormation would, from given parameter, pseudo-parameter and attribute values: so a test can take
 * a policy out of the template as deployed, not as the generator's inputs suggest it should be.
 */
export type Names = Readonly<Record<string, string>>;

export function resolveIntrinsics(value: unknown, names: Names): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, names));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [fn, arg] = entries[0] as [string, unknown];
    if (fn === 'Ref') return lookup(String(arg), names);
    if (fn === 'Fn::GetAtt') return lookup((arg as string[]).join('.'), names);
    if (fn === 'Fn::Sub') {
      if (typeof arg !== 'string') throw new Error('only the string form of Fn::Sub is resolved here');
      return arg.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => lookup(name, names));
    }
    if (fn.startsWith('Fn::')) throw new Error(`${fn} is not resolved here`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolveIntrinsics(v, names)]));
}

function lookup(name: string, names: Names): string {
  const v = names[name];
  if (v === undefined) throw new Error(`the template refers to ${name}, which the test did not give`);
  return v;
}
