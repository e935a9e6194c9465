import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  MessageEvent,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
  Sse,
  SseSignal,
} from '@nestjs/common';
import { Observable } from 'rxjs';
import { ApprovalDecisionDto, CancelTenantDto, CreateTenantDto, ListTenantsQueryDto } from './dto/tenant.dto';
import type { ApprovalDecision } from './provisioning.workflow';
import { tenantPage } from './tenant.page';
import { TenantsService } from './tenants.service';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

@Controller('tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  /**
   * Creates the tenant and starts its provisioning; 202 with the tenant and run ids. With an
   * `Idempotency-Key` header a repeated request creates nothing and returns the same ids
   * (`Idempotent-Replayed: true`).
   */
  @Post()
  @HttpCode(202)
  async create(
    @Body() body: CreateTenantDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: { setHeader(name: string, value: string): unknown },
  ) {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey))
      throw new BadRequestException(
        'Idempotency-Key must be 1-200 printable ASCII characters without spaces.',
      );
    const result = await this.tenants.create(body, idempotencyKey);
    res.setHeader('Location', `/tenants/${result.tenantId}`);
    if (!result.created) res.setHeader('Idempotent-Replayed', 'true');
    return result;
  }

  @Get()
  async list(@Query() query: ListTenantsQueryDto) {
    return { tenants: await this.tenants.list(query) };
  }

  @Get(':id')
  async get(@Param('id', ParseUUIDPipe) id: string) {
    return this.tenants.get(id);
  }

  /** Live progress as server-sent events (`progress` events, then `finished`); resumes after Last-Event-ID. */
  @Sse(':id/events')
  async events(
    @Param('id', ParseUUIDPipe) id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @SseSignal() signal: AbortSignal,
  ): Promise<Observable<MessageEvent>> {
    const after = /^\d{1,9}$/.test(lastEventId ?? '') ? Number(lastEventId) : 0;
    return this.tenants.progressEvents(id, after, signal);
  }

  /** The tenant page: its progress, live (EventSource on /tenants/:id/events). */
  @Get(':id/page')
  @Header('content-type', 'text/html; charset=utf-8')
  async page(@Param('id', ParseUUIDPipe) id: string) {
    const { tenant } = await this.tenants.get(id);
    return tenantPage(tenant);
  }

  @Post(':id/approve')
  @HttpCode(202)
  async approve(@Param('id', ParseUUIDPipe) id: string, @Body() body: ApprovalDecisionDto) {
    return this.tenants.decide(id, decision(true, body));
  }

  @Post(':id/reject')
  @HttpCode(202)
  async reject(@Param('id', ParseUUIDPipe) id: string, @Body() body: ApprovalDecisionDto) {
    return this.tenants.decide(id, decision(false, body));
  }

  @Post(':id/cancel')
  @HttpCode(202)
  async cancel(@Param('id', ParseUUIDPipe) id: string, @Body() body: CancelTenantDto) {
    return this.tenants.cancel(id, body.reason);
  }
}

/** The signal's payload (JSON: no undefined properties). */
function decision(approved: boolean, body: ApprovalDecisionDto): ApprovalDecision {
  return { approved, by: body.by ?? 'operator', ...(body.reason ? { reason: body.reason } : {}) };
}
