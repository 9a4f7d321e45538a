/**
 * What the bundle's slim.cjs throws where the slim path reaches a module it does not carry
 * (scripts/bundle.ts): slim.cjs holds the CLI's own modules and each cloud's CLI half, and nothing
 * heavier, so that `credport auth` parses as little as it can. runFast answers it with the full path,
 * which loads everything. tsc's tree never throws it.
 */
export class FullPathNeeded extends Error {
  constructor(readonly module: string) {
    super(`${module} is not in the slim entry`);
    this.name = 'FullPathNeeded';
  }
}
