import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

const SAFE_ID = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Gives each request an id (X-Request-Id when it is sane) and logs one line when it ends.
 * Only the path is logged: query strings and bodies carry codes, tokens and passwords.
 */
export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const id = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', id);
    let child: Logger | undefined;
    // made on first use: most requests never log anything but their closing line
    Object.defineProperty(ctx.state, 'log', { get: () => (child ??= logger.child({ reqId: id })), configurable: true });
    if (!logger.isLevelEnabled('info')) return next();
    const started = process.hrtime.bigint();
    ctx.res.once('finish', () => {
      (ctx.state.log as Logger).info(
        { method: ctx.method, host: ctx.host, path: ctx.path, status: ctx.res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    });
    await next();
  };
}
