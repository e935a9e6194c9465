import { Client } from 'pg';

/** One statement as a pg client sends it, with the application_name of the client's connection. */
export interface SentStatement {
  app: string;
  text: string;
  /** The prepared statement's name, when it is sent as one. */
  name?: string;
}

/**
 * Reports every statement sent through pg's Client.prototype.query, then lets it through unchanged:
 * a spy that delegates to the real method (counting, not mocking). Call mockRestore() on the result.
 */
export function watchStatements(onStatement: (statement: SentStatement) => void): jest.SpyInstance {
  const realQuery = Client.prototype.query;
  return jest.spyOn(Client.prototype, 'query').mockImplementation(function (
    this: Client,
    ...args: unknown[]
  ) {
    const config = args[0] as { text?: string; name?: string } | string | undefined;
    const app =
      (this as unknown as { connectionParameters: { application_name?: string } }).connectionParameters
        .application_name ?? '?';
    onStatement(
      typeof config === 'string'
        ? { app, text: config }
        : { app, text: String(config?.text), name: config?.name },
    );
    return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof Client.prototype.query);
}
