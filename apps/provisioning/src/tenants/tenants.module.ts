import { Module } from '@nestjs/common';
import { ProvisioningWorkflow } from './provisioning.workflow';
import { TenantsController } from './tenants.controller';
import { TenantsService } from './tenants.service';

@Module({
  controllers: [TenantsController],
  providers: [TenantsService, ProvisioningWorkflow],
})
export class TenantsModule {}
