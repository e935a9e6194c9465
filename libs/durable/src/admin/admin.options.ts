import type { CanActivate, Type } from '@nestjs/common';
import { messages } from '../durable.messages';
import { InvalidOptionsError } from '../errors';
import { DEFAULT_COUNT_CAP } from './admin.store';

/** Injection token of the resolved DurableAdminModule options. */
export const DURABLE_ADMIN_OPTIONS = Symbol('DURABLE_ADMIN_OPTIONS');

/**
 * Options of DurableAdminModule.forRoot.
 * @example DurableAdminModule.forRoot({ path: 'ops/durable', guard: AdminOnlyGuard })
 */
export interface DurableAdminModuleOptions {
  /** URL path of the dashboard; the JSON API is under `<path>/api`. Default 'durable'. */
  path?: string;
  /**
   * Guard protecting every route of the module (dashboard, API, actions): your authentication and
   * authorization. The module shows and changes every run, so it must have one. A class (resolved
   * with dependency injection) or an instance.
   */
  guard?: Type<CanActivate> | CanActivate;
  /** Start without a guard even when NODE_ENV is 'production' (e.g. a global guard protects it). */
  allowUnguarded?: boolean;
  /** Counts per status stop at this number (shown as "N+"). Default 10000. */
  countCap?: number;
}

export interface ResolvedAdminOptions {
  path: string;
  guard?: Type<CanActivate> | CanActivate;
  countCap: number;
}

const PATH = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/** Validates the options; refuses an unguarded module in production unless told. */
export function resolveAdminOptions(
  options: DurableAdminModuleOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedAdminOptions {
  const path = (options.path ?? 'durable').replace(/^\/+|\/+$/g, '');
  if (!PATH.test(path))
    throw new InvalidOptionsError(
      messages.invalidOption('path', options.path, 'URL path segments of letters, digits, - and _'),
    );
  const countCap = options.countCap ?? DEFAULT_COUNT_CAP;
  if (!Number.isInteger(countCap) || countCap < 1 || countCap > 100_000_000)
    throw new InvalidOptionsError(
      messages.invalidOption('countCap', countCap, 'an integer from 1 to 100000000'),
    );
  if (options.guard === undefined && env.NODE_ENV === 'production' && options.allowUnguarded !== true)
    throw new InvalidOptionsError(messages.adminUnguarded());
  return { path, guard: options.guard, countCap };
}
