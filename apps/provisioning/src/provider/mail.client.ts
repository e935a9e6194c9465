import { Inject, Injectable } from '@nestjs/common';
import { PROVISIONING_CONFIG, ProvisioningConfig } from '../config/provisioning.config';
import { ProviderEndpoint } from './provider-endpoint';
import { CallOptions, providerCall } from './provider-http';

/** The mail service: sends templated emails; a repeated idempotency key sends nothing twice. */
@Injectable()
export class MailClient {
  constructor(
    private readonly endpoint: ProviderEndpoint,
    @Inject(PROVISIONING_CONFIG) private readonly config: ProvisioningConfig,
  ) {}

  async send(
    message: {
      tenantId: string;
      tenantName: string;
      to: string;
      template: string;
      data?: Record<string, string>;
    },
    options: CallOptions,
  ): Promise<{ id: string }> {
    const sent = await providerCall<{ id: string }>(this.endpoint.url, 'POST', '/emails', message, {
      ...options,
      timeoutMs: this.config.providerTimeoutMs,
    });
    return { id: sent!.id };
  }
}
