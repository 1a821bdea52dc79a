/**
 * The browser and operating system a User-Agent header names, for the account page's device list and
 * `latchkey user sessions`: the common browsers and systems only, told apart by the tokens they send
 * (most browsers also send the tokens of the engines they descend from, so the order of the checks
 * matters: Edge and Opera send Chrome's, Chrome sends Safari's). Anything else is "Unknown browser" /
 * "Unknown operating system"; a guess is never shown as a fact. Client hints are not asked for.
 */
export interface DeviceDescription {
  /** "Firefox 133", "Chrome 131", "Safari 17", or "Unknown browser". */
  browser: string;
  /** "Windows", "macOS", "iOS 17", "Android 14", "Linux", or "Unknown operating system". */
  os: string;
}

export const UNKNOWN_BROWSER = 'Unknown browser';
export const UNKNOWN_OS = 'Unknown operating system';

/** Browser tokens, most specific first: the name shown and the token whose version follows it. */
const BROWSERS: Array<[name: string, token: RegExp]> = [
  ['Edge', /\b(?:Edg|EdgA|EdgiOS|Edge)\/(\d+)/],
  ['Opera', /\b(?:OPR|OPiOS)\/(\d+)/],
  ['Samsung Internet', /\bSamsungBrowser\/(\d+)/],
  ['Vivaldi', /\bVivaldi\/(\d+)/],
  ['Firefox', /\b(?:Firefox|FxiOS)\/(\d+)/],
  ['Chrome', /\b(?:Chrome|HeadlessChrome|CriOS)\/(\d+)/],
  // Safari's own version is in Version/ (its Safari/ token is the WebKit build)
  ['Safari', /\bVersion\/(\d+)[.\d]* (?:Mobile\/\S+ )?Safari\//],
];

function browserOf(ua: string): string {
  for (const [name, token] of BROWSERS) {
    const m = token.exec(ua);
    if (m) return `${name} ${m[1]}`;
  }
  return UNKNOWN_BROWSER;
}

function osOf(ua: string): string {
  let m: RegExpExecArray | null;
  if ((m = /\bAndroid (\d+)/.exec(ua))) return `Android ${m[1]}`;
  if (/\bAndroid\b/.test(ua)) return 'Android';
  if ((m = /\biPad\b.*? OS (\d+)_/.exec(ua))) return `iPadOS ${m[1]}`;
  if ((m = /\b(?:iPhone|iPod)\b.*? OS (\d+)_/.exec(ua))) return `iOS ${m[1]}`;
  if (/\bWindows NT\b/.test(ua)) return 'Windows';
  if (/\bMac OS X\b|\bMacintosh\b/.test(ua)) return 'macOS';
  if (/\bCrOS\b/.test(ua)) return 'ChromeOS';
  if (/\bLinux\b|\bX11\b/.test(ua)) return 'Linux';
  return UNKNOWN_OS;
}

export function describeUserAgent(ua: string | null | undefined): DeviceDescription {
  if (typeof ua !== 'string' || !ua.trim()) return { browser: UNKNOWN_BROWSER, os: UNKNOWN_OS };
  // a browser always sends Mozilla/5.0 first; a command-line tool or library does not name a browser
  const isBrowser = /^Mozilla\/5\.0 /.test(ua);
  return { browser: isBrowser ? browserOf(ua) : UNKNOWN_BROWSER, os: isBrowser ? osOf(ua) : UNKNOWN_OS };
}
