/** SQLSTATE classes and codes, and socket errors, after which the same statement may succeed later. */
const TRANSIENT_CODES = new Set([
  '57P01', // admin_shutdown: pg_terminate_backend, a server stopping
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the server is starting
  '53300', // too_many_connections
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '25006', // read_only_sql_transaction: a failover demoted the server we reached
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

const TRANSIENT_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|terminating connection|Connection ended|the database system is (starting up|shutting down|in recovery mode)|server closed the connection unexpectedly|read ECONNRESET|write EPIPE|connect ECONNREFUSED/i;

/**
 * Whether a database error means "try again": a lost connection, a server restarting or failing over,
 * a transaction conflict. Such an error on a write leaves its outcome unknown: the statement may have
 * run (and committed) before the connection dropped.
 */
export function isTransient(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('08') || TRANSIENT_CODES.has(code))) return true;
    if (TRANSIENT_MESSAGES.test(String((current as Error).message ?? ''))) return true;
    // TypeORM wraps driver errors (QueryFailedError.driverError); Node wraps with `cause`.
    current = (current as { driverError?: unknown }).driverError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}
