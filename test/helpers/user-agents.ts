import { Browser } from './http.js';

/** Real User-Agent headers of common browsers, for the device list of the account page. */
export const USER_AGENTS = {
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1',
  edgeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86',
  chromeAndroid: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36',
} as const;

/** A cookie jar that sends one User-Agent header with every request, as a browser does. */
export class BrowserWithAgent extends Browser {
  constructor(readonly userAgent: string) {
    super();
  }

  override request(url: string | URL, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    return super.request(url, { ...init, headers: { 'user-agent': this.userAgent, ...init.headers } });
  }
}
