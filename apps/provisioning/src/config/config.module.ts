import { Global, Module } from '@nestjs/common';
import { loadProvisioningConfig, PROVISIONING_CONFIG } from './provisioning.config';

/** The app's settings, read once from the environment (see loadProvisioningConfig). */
@Global()
@Module({
  providers: [{ provide: PROVISIONING_CONFIG, useFactory: () => loadProvisioningConfig() }],
  exports: [PROVISIONING_CONFIG],
})
export class ConfigModule {}
