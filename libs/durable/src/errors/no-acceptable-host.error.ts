import { DurableError } from './durable.error';

/**
 * No host of a multi-host connection string accepted a session of the required kind (e.g. every
 * reachable server is a standby while `target_session_attrs=read-write`): a connection failure,
 * usually transient while a standby is being promoted. Its `cause` carries the SQLSTATE libpq
 * reports for it (08001, a connection exception), so code that retries connection errors retries it.
 */
export class NoAcceptableHostError extends DurableError {
  readonly code = 'DURABLE_NO_ACCEPTABLE_HOST';

  constructor(message: string) {
    super(message, { cause: Object.assign(new Error(message), { code: '08001' }) });
  }
}
