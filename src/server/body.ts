import { parse } from 'node:querystring';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';

/** Reads a small urlencoded form (the sign-in pages' posts); anything else is a clear 4xx. */
export async function readForm(ctx: Context, limit = 16 * 1024): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new LatchkeyError('unsupported_media_type', 'this form must be posted as application/x-www-form-urlencoded', 415);
  }
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) throw new LatchkeyError('request_too_large', `the form is larger than ${limit} bytes`, 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new LatchkeyError('request_too_large', `the form is larger than ${limit} bytes`, 413);
    chunks.push(chunk as Buffer);
  }
  const parsed = parse(Buffer.concat(chunks).toString('utf8'));
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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new LatchkeyError('request_too_large', `the request is larger than ${limit} bytes`, 413);
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    body = undefined;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new LatchkeyError('invalid_request', 'the request body is not a JSON object', 400);
  return body as Record<string, unknown>;
}
