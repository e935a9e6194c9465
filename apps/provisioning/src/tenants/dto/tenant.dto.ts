import { Transform, Type } from 'class-transformer';
import {
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { TENANT_PLANS, TENANT_STATUSES, type TenantPlan, type TenantStatus } from '../tenant.entity';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** POST /tenants */
export class CreateTenantDto {
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  name!: string;

  @IsIn(TENANT_PLANS, { message: `plan must be one of: ${TENANT_PLANS.join(', ')}` })
  plan!: TenantPlan;

  @IsString()
  @Matches(/^[a-z]{2}-[a-z]+-\d{1,2}$/, { message: 'region must look like eu-west-1' })
  region!: string;

  @Transform(trim)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'adminEmail must be an email address' })
  adminEmail!: string;
}

/** POST /tenants/:id/approve and /reject (an empty body is fine). */
export class ApprovalDecisionDto {
  /** Who decides (an operator's name or email). */
  @IsOptional()
  @IsString()
  @Length(1, 200)
  by?: string;

  @IsOptional()
  @IsString()
  @MaxLength(500)
  reason?: string;
}

/** POST /tenants/:id/cancel */
export class CancelTenantDto {
  @IsOptional()
  @IsString()
  @MaxLength(500)
  reason?: string;
}

/** GET /tenants */
export class ListTenantsQueryDto {
  @IsOptional()
  @IsIn(TENANT_STATUSES, { message: `status must be one of: ${TENANT_STATUSES.join(', ')}` })
  status?: TenantStatus;

  @IsOptional()
  @IsIn(TENANT_PLANS, { message: `plan must be one of: ${TENANT_PLANS.join(', ')}` })
  plan?: TenantPlan;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}
