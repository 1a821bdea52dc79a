import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

const SAFE_ID = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * `ctx.state` of every request: what Koa put there, and `log`, a child logger with the request id, made on
 * first use. The getter lives on the class, not on each request: a getter defined per request
 * (`Object.defineProperty` with a new closure) is held by an accessor object V8 allocates in the old
 * generation, so each request's whole context (request, response, body) survived every young-generation
 * collection until the next full one (bench/README.md, "Garbage that outlives its request").
 */
class RequestState {
  #child: Logger | undefined;
  readonly #logger: Logger;
  readonly #id: string;
  [key: string]: unknown;

  constructor(logger: Logger, id: string, initial: Record<string, unknown>) {
    this.#logger = logger;
    this.#id = id;
    Object.assign(this, initial);
  }

  get log(): Logger {
    return (this.#child ??= this.#logger.child({ reqId: this.#id }));
  }
}

/**
 * Gives each request an id (X-Request-Id when it is sane) and logs one line when it ends.
 * Only the path is logged: query strings and bodies carry codes, tokens and passwords.
 */
export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const id = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', id);
    // the request's logger is made on first use: most requests never log anything but their closing line
    ctx.state = new RequestState(logger, id, ctx.state);
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
