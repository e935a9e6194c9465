/** The provider did not answer usefully (network error, timeout, 5xx, 409 in progress, 429): retry. */
export class ProviderUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderUnavailableError';
  }
}

/** The provider refused the request for good (4xx): retrying cannot help. */
export class ProviderRejectedError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderRejectedError';
  }
}
