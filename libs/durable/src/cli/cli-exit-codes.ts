import { DurableError } from '../errors';

/** Exit codes of `nest-durable`, stable for scripts. */
export const EXIT = {
  ok: 0,
  /** Anything unexpected. */
  failed: 1,
  /** Bad command line or argument (unknown option, invalid filter, bad JSON). */
  usage: 2,
  /** No run with that id. */
  notFound: 3,
  /** The run is in a state that refuses the action (resume a running run, cancel a finished one, id taken). */
  refused: 4,
  /** No database URL, or the database cannot be reached. */
  noDatabase: 5,
} as const;

/** The exit code for an error a command threw. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof DurableError) {
    switch (error.code) {
      case 'DURABLE_INVALID_ARGUMENT':
      case 'DURABLE_INVALID_OPTIONS':
      case 'DURABLE_NON_SERIALIZABLE':
      case 'DURABLE_PAYLOAD_TOO_LARGE':
        return EXIT.usage;
      case 'DURABLE_RUN_NOT_FOUND':
        return EXIT.notFound;
      case 'DURABLE_RUN_STATE':
      case 'DURABLE_RUN_CONFLICT':
        return EXIT.refused;
    }
    return EXIT.failed;
  }
  const code = (error as { code?: unknown })?.code;
  if (
    typeof code === 'string' &&
    (/^(08|28|3D)/.test(code) || ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT'].includes(code))
  )
    return EXIT.noDatabase;
  return EXIT.failed;
}
