/**
 * What the bundle's slim.cjs throws where the slim path reaches a module it does not carry
 * (scripts/bundle.ts): slim.cjs holds the CLI's own modules and each cloud's CLI half, and nothing
 * heavier, so that `credport auth` parses as little as it can. runFast answers it with the full path,
 * which loads everything. tsc's tree never throws it.
 */
export class FullPathNeeded extends Error {
  /**
   * Set once one was thrown: a module that throws while it loads throws only the first time, and a
   * second import() of it answers an empty module, whose use then fails with a TypeError.
   */
  static thrown = false;

  constructor(readonly module: string) {
    super(`${module} is not in slim.cjs`);
    this.name = 'FullPathNeeded';
    FullPathNeeded.thrown = true;
  }
}
