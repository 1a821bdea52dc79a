import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';

/** The one place error codes become HTTP answers: problem JSON for APIs, an error page for browsers. */
export function sendError(ctx: Context, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: code, error_description: message };
}

export function statusOf(err: unknown): { status: number; code: string; message: string; expose: boolean } {
  if (err instanceof LatchkeyError) return { status: err.status, code: err.code, message: err.message, expose: true };
  const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string };
  const status = e?.status ?? e?.statusCode;
  if (status && status >= 400 && status < 500 && e.expose !== false) {
    return { status, code: status === 413 ? 'request_too_large' : 'invalid_request', message: e.message ?? 'invalid request', expose: true };
  }
  return { status: 500, code: 'server_error', message: 'an unexpected error occurred; the request id in the logs tells operators where', expose: false };
}

export function errorMiddleware() {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    try {
      await next();
    } catch (err) {
      const { status, code, message, expose } = statusOf(err);
      if (!expose) ctx.state.log?.error({ err }, 'unhandled error');
      sendError(ctx, status, code, message);
    }
  };
}
