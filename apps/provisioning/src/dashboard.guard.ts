import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';

/**
 * The sample app's guard for the durable dashboard: only requests from this machine (loopback) get
 * in, which is what a demo listening on 127.0.0.1 needs. A real app puts its own authentication and
 * authorization here (the dashboard shows every run's data and can cancel, resume and fork runs).
 */
@Injectable()
export class DemoDashboardGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ socket?: { remoteAddress?: string } }>();
    const address = request.socket?.remoteAddress ?? '';
    return /^(127\.|::1$|::ffff:127\.)/.test(address);
  }
}
