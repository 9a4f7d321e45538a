/**
 * The config decides where the device's JWT and credentials are sent (the
 * issuer, STS endpoints) and who may fetch them (allow_uids), so a config that
 * another user can rewrite hands them the identity. Refused when the file, or
 * the folder holding it, is writable by anyone but its owner, or owned by
 * someone other than the daemon's user or root. A folder with the sticky bit
 * (like /tmp) lets others create files but not replace ours, so it passes.
 */
import { lstatSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

function describeOwner(st: Stats): string {
  return `uid ${st.uid}`;
}

/** Problems with the config file's ownership and modes, as one-line sentences (empty when fine). */
export function configPermissionProblems(file: string, uid = process.getuid?.() ?? -1): string[] {
  if (uid < 0) return []; // no uids (Windows): nothing to check against
  const problems: string[] = [];
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch {
    return problems; // reading it will say what is wrong
  }
  if (st.isSymbolicLink()) {
    try {
      st = statSync(file);
    } catch {
      return problems;
    }
  }
  const trusted = (s: Stats) => s.uid === uid || s.uid === 0;
  if (!trusted(st))
    problems.push(`${file} is owned by ${describeOwner(st)}, not by this user or root; another user controls where credentials go`);
  if ((st.mode & 0o022) !== 0)
    problems.push(`${file} is writable by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod go-w ${file}`);
  const dir = dirname(file);
  try {
    const d = statSync(dir);
    const sticky = (d.mode & 0o1000) !== 0;
    if (!trusted(d)) problems.push(`its folder ${dir} is owned by ${describeOwner(d)}, who could replace the config`);
    else if ((d.mode & 0o022) !== 0 && !sticky)
      problems.push(
        `its folder ${dir} is writable by other users (mode ${(d.mode & 0o777).toString(8)}), who could replace the config; run: chmod go-w ${dir}`,
      );
  } catch {
    // the folder vanished; reading the file will fail next
  }
  return problems;
}
