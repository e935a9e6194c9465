import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DurableError } from '../errors';

/** HTTP status of each error code the admin API answers with (others are 500). */
export const ADMIN_ERROR_STATUS: Record<string, number> = {
  DURABLE_INVALID_ARGUMENT: HttpStatus.BAD_REQUEST,
  DURABLE_NON_SERIALIZABLE: HttpStatus.BAD_REQUEST,
  DURABLE_RUN_NOT_FOUND: HttpStatus.NOT_FOUND,
  DURABLE_RUN_STATE: HttpStatus.CONFLICT,
  DURABLE_RUN_CONFLICT: HttpStatus.CONFLICT,
  DURABLE_PAYLOAD_TOO_LARGE: HttpStatus.PAYLOAD_TOO_LARGE,
};

/** The library's typed errors as JSON answers of the admin API: { statusCode, error, code, message }. */
@Catch(DurableError)
export class AdminErrorsFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: DurableError, host: ArgumentsHost): void {
    const status = ADMIN_ERROR_STATUS[error.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
    const body = { statusCode: status, error: error.name, code: error.code, message: error.message };
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), body, status);
  }
}
