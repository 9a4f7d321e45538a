/** The audit log a resolved config asks for: the file with its rotation, or nothing when audit_file = "off". */
import type { ResolvedConfig } from '../config/load.js';
import { AuditLog, NullAuditLog, type HandoutRecorder } from './audit-log.js';
import { parseSize } from './size.js';

/** Throws a one-line error when the file is unsafe (symlink, readable by others, not ours): a start-up failure. */
export function auditLogFromConfig(daemon: ResolvedConfig['daemon'], onError?: (err: Error) => void): HandoutRecorder {
  if (!daemon.auditFile) return new NullAuditLog();
  return new AuditLog({
    file: daemon.auditFile,
    maxSize: parseSize(daemon.audit_max_size),
    keep: daemon.audit_files,
    ...(onError ? { onError } : {}),
  });
}
