import { Controller, DynamicModule, Logger, Module, Type, UseFilters, UseGuards } from '@nestjs/common';
import { messages } from '../durable.messages';
import { AdminActions } from './admin-actions';
import { AdminApiController } from './admin-api.controller';
import { AdminErrorsFilter } from './admin-errors.filter';
import { AdminEventsService } from './admin-events.service';
import { AdminPagesController } from './admin-pages.controller';
import { DURABLE_ADMIN_OPTIONS, resolveAdminOptions, type DurableAdminModuleOptions } from './admin.options';
import { SameOriginGuard } from './same-origin.guard';

/**
 * The operator's admin API and web dashboard, in the app's own HTTP server. Off unless imported;
 * needs DurableModule (any process: `worker: false` is fine). Protect it with the app's guard: it shows
 * every run's input and output and can cancel, resume, signal and fork runs. Without a guard it refuses
 * to start when NODE_ENV is 'production' (unless `allowUnguarded: true`).
 * @example
 * imports: [DurableModule.forRoot(), DurableAdminModule.forRoot({ path: 'ops/durable', guard: AdminGuard })]
 */
@Module({})
export class DurableAdminModule {
  static forRoot(options: DurableAdminModuleOptions = {}): DynamicModule {
    const resolved = resolveAdminOptions(options);
    if (!resolved.guard) new Logger('DurableAdmin').warn(messages.adminUnguardedWarning(resolved.path));
    const guards = resolved.guard ? [resolved.guard, SameOriginGuard] : [SameOriginGuard];
    const guardProviders = typeof resolved.guard === 'function' ? [resolved.guard] : [];
    return {
      module: DurableAdminModule,
      controllers: [
        mount(AdminApiController, `${resolved.path}/api`, guards),
        mount(AdminPagesController, resolved.path, guards),
      ],
      providers: [
        { provide: DURABLE_ADMIN_OPTIONS, useValue: resolved },
        AdminActions,
        AdminEventsService,
        SameOriginGuard,
        ...guardProviders,
      ],
    };
  }
}

/** A controller class of its own per mount, so its path and guards do not touch the base class. */
function mount<T extends Type>(base: T, path: string, guards: unknown[]): T {
  const mounted = class extends base {};
  Object.defineProperty(mounted, 'name', { value: base.name });
  Controller(path)(mounted);
  UseGuards(...(guards as Parameters<typeof UseGuards>))(mounted);
  UseFilters(AdminErrorsFilter)(mounted);
  return mounted;
}
