import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import { DurableError } from 'nest-durable';

const STATUS_BY_CODE: Record<string, number> = {
  DURABLE_INVALID_ARGUMENT: HttpStatus.BAD_REQUEST,
  DURABLE_RUN_NOT_FOUND: HttpStatus.NOT_FOUND,
  DURABLE_RUN_STATE: HttpStatus.CONFLICT,
  DURABLE_RUN_CONFLICT: HttpStatus.CONFLICT,
  DURABLE_PAYLOAD_TOO_LARGE: HttpStatus.PAYLOAD_TOO_LARGE,
};

/** The library's typed errors that reach a controller, as HTTP answers (500 for the others). */
@Catch(DurableError)
export class DurableErrorsFilter implements ExceptionFilter {
  catch(error: DurableError, host: ArgumentsHost): void {
    const status = STATUS_BY_CODE[error.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
    host
      .switchToHttp()
      .getResponse<{ status(code: number): { json(body: unknown): void } }>()
      .status(status)
      .json({ statusCode: status, error: error.name, code: error.code, message: error.message });
  }
}
