import { BadGatewayException, Controller, Get, Query } from '@nestjs/common';
import { ProviderEndpoint } from '../provider/provider-endpoint';

/**
 * What the provider saw, as the provider reports it (the in-process fake or the one at PROVIDER_URL):
 * GET /fake-provider/calls?tenantId=  and  GET /fake-provider/resources?tenantId=
 */
@Controller('fake-provider')
export class FakeProviderController {
  constructor(private readonly endpoint: ProviderEndpoint) {}

  @Get('calls')
  calls(@Query('tenantId') tenantId?: string) {
    return this.forward('/calls', tenantId);
  }

  @Get('resources')
  resources(@Query('tenantId') tenantId?: string) {
    return this.forward('/resources', tenantId);
  }

  private async forward(path: string, tenantId?: string): Promise<unknown> {
    const query = tenantId ? `?tenantId=${encodeURIComponent(tenantId)}` : '';
    try {
      const response = await fetch(`${this.endpoint.url}${path}${query}`, {
        signal: AbortSignal.timeout(5_000),
      });
      if (!response.ok) throw new Error(`answered ${response.status}`);
      return await response.json();
    } catch (error) {
      throw new BadGatewayException(
        `The provider at ${this.endpoint.url} did not answer: ${(error as Error).message}`,
      );
    }
  }
}
