/**
 * Whether a 'running' record's process is still alive. 'crashed' is never written: a run killed with
 * SIGKILL (or a power loss) leaves its last complete record with status 'running', and readers derive
 * 'crashed' from its pid (same host) or its heartbeat (any host).
 */
import { hostname } from 'node:os';
import type { EnvInfo, RunRecord, RunStatus } from './schema.ts';

/** What liveness needs from a record (env is optional: fixtures may leave it out). */
type LivenessFields = Pick<RunRecord, 'status' | 'times'> & { env?: Pick<EnvInfo, 'pid' | 'host'> };

/** How long a live process may go without a heartbeat when its pid cannot be checked (another host). */
export const STALE_MS = 120_000;
/**
 * On this host a living pid keeps a run 'running' through long synchronous phases (evaluation can
 * block the event loop, so no heartbeat, for minutes), but not forever: after this long without a
 * heartbeat the pid is taken to belong to another process now (pids are reused).
 */
export const PID_TRUST_MS = 30 * 60_000;

/** Whether `pid` names a living process on this machine (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why a 'running' record's process is gone (kill -9, power loss), or null while it may be alive:
 * on this host its pid is checked (dead: crashed at once); on another host, or without a pid, a
 * heartbeat older than `staleMs` means it died.
 */
export function staleReason(record: LivenessFields, now = Date.now(), staleMs = STALE_MS): string | null {
  if (record.status !== 'running') return null;
  const age = now - Date.parse(record.times.heartbeat);
  const env = record.env;
  if (env !== undefined && env.host === hostname() && env.pid > 0) {
    if (!pidAlive(env.pid)) return `its process ${env.pid} on ${env.host} is gone (last heartbeat ${record.times.heartbeat})`;
    return age > PID_TRUST_MS ? `no heartbeat since ${record.times.heartbeat} (pid ${env.pid} now belongs to another process)` : null;
  }
  return age > staleMs ? `no heartbeat since ${record.times.heartbeat}` : null;
}

/** A 'running' record whose process died: see staleReason. */
export function isStale(record: LivenessFields, now = Date.now(), staleMs = STALE_MS): boolean {
  return staleReason(record, now, staleMs) !== null;
}

/** The status to show: 'crashed' for a running record whose process died, else the recorded one. */
export function effectiveStatus(record: LivenessFields, now = Date.now(), staleMs = STALE_MS): RunStatus {
  return isStale(record, now, staleMs) ? 'crashed' : record.status;
}
