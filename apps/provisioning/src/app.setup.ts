import { INestApplication, ValidationPipe } from '@nestjs/common';
import { DurableErrorsFilter } from './durable-errors.filter';
import { StorableTextPipe } from './storable-text.pipe';

/**
 * What main.ts and the e2e tests both apply to the Nest application: text PostgreSQL cannot store and
 * DTO validation failures are a 400 (unknown fields too, not silently dropped), the library's errors
 * as HTTP answers, and shutdown hooks so that a SIGTERM drains the runs in flight and hands their
 * leases over at once.
 */
export function configureApp(
  app: INestApplication,
  options: { shutdownHooks?: boolean } = {},
): INestApplication {
  app.useGlobalPipes(
    new StorableTextPipe(),
    new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
  );
  app.useGlobalFilters(new DurableErrorsFilter());
  if (options.shutdownHooks ?? true) app.enableShutdownHooks();
  return app;
}
