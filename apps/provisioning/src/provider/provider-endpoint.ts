import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { PROVISIONING_CONFIG, ProvisioningConfig } from '../config/provisioning.config';
import { FakeProvider, fakeProviderOptionsFromEnv } from '../fake-provider/fake-provider';

/**
 * Where the cloud provider and the mail service are: PROVIDER_URL, or else a fake provider started in
 * this process on a free loopback port (npm start, the e2e tests). It starts in onModuleInit, before the
 * library recovers interrupted runs (onApplicationBootstrap), and stops in onApplicationShutdown, after
 * the library has drained the runs in flight (beforeApplicationShutdown).
 */
@Injectable()
export class ProviderEndpoint implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Provider');
  private baseUrl?: string;
  /** The in-process fake provider, when there is one (tests drive its faults directly). */
  fake?: FakeProvider;

  constructor(@Inject(PROVISIONING_CONFIG) private readonly config: ProvisioningConfig) {}

  async onModuleInit(): Promise<void> {
    if (this.config.providerUrl) {
      this.baseUrl = this.config.providerUrl.replace(/\/+$/, '');
      this.logger.log(`cloud provider and mail service at ${this.baseUrl}`);
      return;
    }
    this.fake = new FakeProvider(fakeProviderOptionsFromEnv());
    this.baseUrl = await this.fake.listen(Number(process.env.FAKE_PROVIDER_PORT ?? 0));
    this.logger.log(`fake cloud provider and mail service in this process at ${this.baseUrl}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.fake?.close();
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('the provider endpoint is not initialised yet');
    return this.baseUrl;
  }
}
