import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { requestLog } from '../../src/server/request-log.js';

/** A Koa app with the request log first, answering what a handler sees of `ctx.state`; the log lines it wrote. */
async function serve(level: string, handler: (ctx: Koa.Context) => unknown) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.state.before = 'kept';
    await next();
  });
  app.use(requestLog(logger));
  app.use(async (ctx) => {
    ctx.body = (await handler(ctx)) ?? {};
  });
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, lines, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('request log (src/server/request-log.ts)', () => {
  it("gives ctx.state a lazily made child logger with the request id, from the class: no getter defined per request", async () => {
    const s = await serve('info', (ctx) => {
      ctx.state.log.info({ step: 'handler' }, 'inside');
      return {
        ownLog: Object.getOwnPropertyDescriptor(ctx.state, 'log') ?? null,
        before: ctx.state.before,
      };
    });
    try {
      const res = await fetch(`${s.url}/some/path?secret=abc`, { headers: { 'x-request-id': 'req-123' } });
      expect(res.headers.get('x-request-id')).toBe('req-123');
      // what earlier middleware put in ctx.state is still there; `log` is not an own property
      expect(await res.json()).toEqual({ ownLog: null, before: 'kept' });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(s.lines.find((l) => l.msg === 'inside')).toMatchObject({ reqId: 'req-123', step: 'handler' });
      const closing = s.lines.find((l) => l.msg === 'request');
      expect(closing).toMatchObject({ method: 'GET', path: '/some/path', status: 200 });
      // query strings carry codes and tokens: never logged
      expect(JSON.stringify(s.lines)).not.toContain('secret=abc');
    } finally {
      await s.close();
    }
  });

  it('replaces an unsafe X-Request-Id with a fresh one and logs nothing at warn', async () => {
    const s = await serve('warn', () => undefined);
    try {
      const res = await fetch(`${s.url}/`, { headers: { 'x-request-id': 'bad id\twith spaces' } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(s.lines).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
