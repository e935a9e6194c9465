import { messages } from './durable.messages';
import { InvalidOptionsError } from './errors';

/**
 * Loads an optional peer dependency with `require`, which works from the package's CommonJS build
 * whether the app itself is CommonJS or ESM (the peer resolves from the app's node_modules). Returns
 * undefined when the peer is not installed; any other failure to load it (a broken install, a missing
 * dependency of the peer) is thrown as is.
 */
export function loadOptionalPeer<T>(name: string): T | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (error) {
    if (isNotFound(error, name)) return undefined;
    throw error;
  }
}

/** Loads a peer the app asked for (by importing a feature that needs it): missing is a clear boot error. */
export function requirePeer<T>(name: string, feature: string): T {
  const loaded = loadOptionalPeer<T>(name);
  if (loaded === undefined) throw new InvalidOptionsError(messages.missingPeer(name, feature));
  return loaded;
}

function isNotFound(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === 'MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${name}'`);
}
