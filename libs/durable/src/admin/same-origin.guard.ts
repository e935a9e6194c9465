import { CanActivate, ExecutionContext, ForbiddenException, Injectable } from '@nestjs/common';

/**
 * Refuses state-changing requests sent by another site's page (cross-site request forgery: the
 * browser would attach the operator's cookies). Browsers say where a request comes from
 * (Sec-Fetch-Site, Origin); tools such as curl send neither and are let through to the app's guard.
 */
@Injectable()
export class SameOriginGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context
      .switchToHttp()
      .getRequest<{ method: string; headers: Record<string, string | undefined> }>();
    if (request.method === 'GET' || request.method === 'HEAD') return true;
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new ForbiddenException('Cross-site requests cannot change runs.');
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (host !== request.headers.host)
        throw new ForbiddenException('Cross-origin requests cannot change runs.');
    } else if (origin === 'null') {
      throw new ForbiddenException('Requests from an opaque origin cannot change runs.');
    }
    return true;
  }
}
