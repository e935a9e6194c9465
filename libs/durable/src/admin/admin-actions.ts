import { Injectable } from '@nestjs/common';
import { DurableClient } from '../durable.client';
import { InvalidArgumentError } from '../errors';

/** A request body as sent by a form or as JSON: only string fields are read. */
export type ActionBody = Record<string, unknown> | undefined;

/**
 * The operator actions of the admin API and dashboard, on DurableClient: each validates its body's
 * fields and lets the client's typed errors through (unknown run, wrong state, bad id).
 */
@Injectable()
export class AdminActions {
  constructor(private readonly client: DurableClient) {}

  cancel(id: string, body: ActionBody): Promise<boolean> {
    return this.client.cancel(id, optionalText(body, 'reason'));
  }

  resume(id: string): Promise<void> {
    return this.client.resume(id);
  }

  /** `payload` is JSON: a string of JSON text from a form, or any JSON value from the API. */
  async signal(id: string, body: ActionBody, payloadIsText: boolean): Promise<void> {
    const name = optionalText(body, 'name');
    if (name === undefined) throw new InvalidArgumentError('signal: the signal name is required.');
    let payload = body?.payload;
    if (payloadIsText) {
      const text = typeof payload === 'string' ? payload.trim() : '';
      try {
        payload = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw new InvalidArgumentError('signal: the payload is not valid JSON (leave it empty for none).');
      }
    }
    await this.client.signal(id, name, payload);
  }

  async fork(id: string, body: ActionBody): Promise<string> {
    const handle = await this.client.fork(id, {
      fromStep: optionalText(body, 'fromStep'),
      id: optionalText(body, 'id'),
    });
    return handle.id;
  }
}

function optionalText(body: ActionBody, field: string): string | undefined {
  const value = body?.[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string.`);
  return value;
}
