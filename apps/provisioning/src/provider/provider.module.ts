import { Module } from '@nestjs/common';
import { CloudClient } from './cloud.client';
import { MailClient } from './mail.client';
import { ProviderEndpoint } from './provider-endpoint';

/** Clients of the cloud provider and the mail service (and the in-process fake when PROVIDER_URL is unset). */
@Module({
  providers: [ProviderEndpoint, CloudClient, MailClient],
  exports: [ProviderEndpoint, CloudClient, MailClient],
})
export class ProviderModule {}
