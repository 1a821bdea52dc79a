import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';
import { layoutFor } from '../interactions/layout.js';
import type { ServedIssuer } from '../oidc/providers.js';
import { renderPage } from '../views/render.js';

/** The one place error codes become HTTP answers: JSON for scripts and APIs, an error page for browsers (see wantsPage). */
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

/**
 * A browser's navigation or form submission: it asks for HTML before JSON (browsers send
 * `Accept: text/html,...`). Scripts and API clients ask for JSON, or for anything (`*\/*`), and get JSON.
 */
function wantsPage(ctx: Context): boolean {
  return ctx.method !== 'HEAD' && ctx.accepts('json', 'html') === 'html';
}

const PAGE_TITLES: Record<number, string> = {
  413: 'This form is too large',
  415: 'This form could not be read',
};

/** The error as a page in the realm's shell, for a person in a browser (a form that could not be read, say). */
export function sendErrorPage(ctx: Context, status: number, code: string, message: string): void {
  const title = PAGE_TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'This request could not be handled');
  const sentence = `${message.charAt(0).toUpperCase()}${message.slice(1)}${/[.!?]$/.test(message) ? '' : '.'}`;
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = renderPage('error', { layout: layoutFor(ctx.state.served as ServedIssuer | undefined, title), title, message: `${sentence} Go back and try again.`, code });
}

export function errorMiddleware() {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    try {
      await next();
    } catch (err) {
      const { status, code, message, expose } = statusOf(err);
      if (!expose) ctx.state.log?.error({ err }, 'unhandled error');
      if (wantsPage(ctx)) return sendErrorPage(ctx, status, code, message);
      sendError(ctx, status, code, message);
    }
  };
}
