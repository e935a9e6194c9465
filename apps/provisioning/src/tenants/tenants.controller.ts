import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
} from '@nestjs/common';
import { TenantsService } from './tenants.service';

@Controller('tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @HttpCode(202)
  async create(@Body() body: Record<string, unknown>) {
    const { name, plan, region, adminEmail } = body ?? {};
    if (typeof name !== 'string' || name.length < 1 || name.length > 100)
      throw new BadRequestException('name: 1-100 characters');
    if (plan !== 'free' && plan !== 'pro' && plan !== 'enterprise')
      throw new BadRequestException('plan: free, pro or enterprise');
    if (typeof region !== 'string' || !/^[a-z0-9-]{2,30}$/.test(region))
      throw new BadRequestException('region: like eu-west-1');
    if (typeof adminEmail !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(adminEmail))
      throw new BadRequestException('adminEmail: an email');
    return this.tenants.create({ name, plan, region, adminEmail });
  }

  @Get(':id')
  async get(@Param('id', ParseUUIDPipe) id: string) {
    const found = await this.tenants.get(id);
    if (!found) throw new NotFoundException(`No tenant ${id}`);
    return found;
  }
}
