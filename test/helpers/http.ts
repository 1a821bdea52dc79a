import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, fetch as undiciFetch } from 'undici';

/** Node's resolver does not know `*.localhost`: map every such name to 127.0.0.1. */
function lookup(hostname: string, options: any, callback: any): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 } satisfies LookupAddress]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback);
}

export const dispatcher = new Agent({ connect: { lookup } });

/** fetch that reaches `*.localhost` hosts; pass it to openid-client as its customFetch. */
export const testFetch: typeof fetch = ((input: any, init?: any) => undiciFetch(input, { ...init, dispatcher })) as any;

/** A tiny cookie jar + manual-redirect HTTP client, enough to walk the sign-in pages like a browser. */
export class Browser {
  readonly cookies = new Map<string, Map<string, string>>();

  cookieHeader(url: URL): string {
    const jar = this.cookies.get(url.host);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  store(url: URL, res: Response): void {
    const setCookies = (res.headers as unknown as { getSetCookie(): string[] }).getSetCookie?.() ?? [];
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const jar = this.cookies.get(url.host) ?? new Map<string, string>();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
      this.cookies.set(url.host, jar);
    }
  }

  async request(url: string | URL, init: { method?: string; form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url);
    const headers: Record<string, string> = { ...init.headers };
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const res = await testFetch(target, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.store(target, res);
    return res;
  }

  /** Follows redirects until one leaves for `stopAt` (the client's redirect URI) or a page is returned. */
  async follow(url: string | URL, init: { method?: string; form?: Record<string, string> } = {}, stopAt?: string): Promise<{ res: Response; url: URL }> {
    let current = new URL(url);
    // already the client's URI (a verify answer that points past the resume): a browser goes there, not here
    if (stopAt && current.href.startsWith(stopAt)) return { res: new Response(null, { status: 303, headers: { location: current.href } }), url: current };
    let res = await this.request(current, init);
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location')!, current);
      if (stopAt && next.href.startsWith(stopAt)) return { res, url: next };
      current = next;
      res = await this.request(current);
    }
    return { res, url: current };
  }
}

/** Pulls hidden and named inputs plus the form action out of a page (enough for our own pages). */
export function parseForm(html: string, actionContains?: string): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => !actionContains || (f[1] ?? '').includes(actionContains)) ?? forms[0];
  if (!form) throw new Error(`no form in page:\n${html.slice(0, 500)}`);
  const action = /action="([^"]*)"/.exec(form[1]!)?.[1] ?? '';
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input\b([^>]*)>/g)) {
    const name = /name="([^"]*)"/.exec(input[1]!)?.[1];
    const value = /value="([^"]*)"/.exec(input[1]!)?.[1] ?? '';
    if (name) fields[name] = value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  }
  return { action: action.replace(/&amp;/g, '&'), fields };
}
