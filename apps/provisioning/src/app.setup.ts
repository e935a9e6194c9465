import { INestApplication, ValidationPipe } from '@nestjs/common';
import { DurableErrorsFilter } from './durable-errors.filter';

/**
 * What main.ts and the e2e tests both apply to the Nest application: DTO validation (unknown fields
 * are a 400, not silently dropped), the library's errors as HTTP answers, and shutdown hooks so that a
 * SIGTERM drains the runs in flight and hands their leases over at once.
 */
export function configureApp(
  app: INestApplication,
  options: { shutdownHooks?: boolean } = {},
): INestApplication {
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.useGlobalFilters(new DurableErrorsFilter());
  if (options.shutdownHooks ?? true) app.enableShutdownHooks();
  return app;
}
