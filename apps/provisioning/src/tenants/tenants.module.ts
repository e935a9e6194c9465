import { Module } from '@nestjs/common';
import { ProviderModule } from '../provider/provider.module';
import { ProvisioningWorkflow } from './provisioning.workflow';
import { TenantsController } from './tenants.controller';
import { TenantsService } from './tenants.service';

@Module({
  imports: [ProviderModule],
  controllers: [TenantsController],
  providers: [TenantsService, ProvisioningWorkflow],
})
export class TenantsModule {}
