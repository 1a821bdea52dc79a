import { parse } from 'node:querystring';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';

const tooLarge = (what: string, limit: number) => new LatchkeyError('request_too_large', `${what} is larger than ${limit} bytes`, 413);

/** The request's body, read until it passes `limit` bytes: then a 413 naming `what` ("the form"). */
async function readBody(ctx: Context, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge(what, limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads a small urlencoded form (the sign-in pages' posts); anything else is a clear 4xx. */
export async function readForm(ctx: Context, limit = 16 * 1024): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new LatchkeyError('unsupported_media_type', 'this form must be posted as application/x-www-form-urlencoded', 415);
  }
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) throw tooLarge('the form', limit);
  const parsed = parse((await readBody(ctx, limit, 'the form')).toString('utf8'));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (Array.isArray(value)) throw new LatchkeyError('invalid_request', `form field "${key}" was sent more than once`, 400);
    out[key] = value ?? '';
  }
  return out;
}

/** Reads a small JSON object body (the passkey script's posts); anything else is a clear 4xx. */
export async function readJsonObject(ctx: Context, limit = 32 * 1024): Promise<Record<string, unknown>> {
  if (!ctx.is('application/json')) throw new LatchkeyError('unsupported_media_type', 'send JSON (content-type: application/json)', 415);
  const text = (await readBody(ctx, limit, 'the request')).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text || '{}');
  } catch {
    body = undefined;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new LatchkeyError('invalid_request', 'the request body is not a JSON object', 400);
  return body as Record<string, unknown>;
}
