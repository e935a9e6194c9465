/** Base class of every error the library throws; `code` is stable and machine-readable. */
export abstract class DurableError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
