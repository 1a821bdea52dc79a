/**
 * Server-side page rendering for Latchkey.
 *
 * Templates are Eta files in the top-level `views/` folder; every page extends
 * `views/partials/layout.eta`. All interpolations (`<%= %>`) are HTML-escaped; the only raw
 * output (`<%~ %>`) is the layout body and the forms that node-oidc-provider generates itself.
 *
 * The pages are built for a strict Content-Security-Policy: there is no inline <style>,
 * style="" attribute, inline <script> or on*="" handler anywhere. Styling comes from the
 * static `/assets/latchkey.css` plus, when a realm has its own colour, the generated
 * `/assets/realm.css?primary=%23rrggbb` (see {@link realmCss} and {@link realmCssHref}).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';
import { projectRoot } from '../db/paths.js';

/** The common data every page receives under the `layout` key. */
export interface LayoutData {
  realmName: string;
  logoUrl?: string;
  primaryColor?: string;
  title: string;
  lang?: string;
}

/** What the layout partial actually sees as `it.layout` (already validated). */
interface NormalizedLayout {
  realmName: string;
  /** Only set when the configured logo is an http: or https: URL. */
  logoUrl?: string;
  title: string;
  lang: string;
  stylesheetHref: string;
  /** Only set when the realm has a valid colour different from the default. */
  realmStylesheetHref?: string;
}

export const DEFAULT_PRIMARY_COLOR = '#2f5bea';
export const DEFAULT_REALM_NAME = 'Latchkey';
export const ASSETS_URL_PREFIX = '/assets';

/**
 * The backgrounds the primary colour's text (links, link-styled buttons, focus rings) sits on in
 * latchkey.css, light and dark: the card and the muted panels on it (e.g. the chosen email with its
 * "Not you?" button). Keep in sync with --lk-surface and --lk-surface-muted in the CSS.
 */
const LIGHT_SURFACES = ['#ffffff', '#f6f7f9'];
const DARK_SURFACES = ['#1b1f27', '#232833'];

/** Page templates that may be rendered (anything else, e.g. partials, is refused). */
const PAGES = new Set([
  'login',
  'signup',
  'consent',
  'logout',
  'logged-out',
  'error',
  'device-code',
  'device-confirm',
  'device-done',
  // Identifier-first sign-in, second factors and the account page (passkeys, TOTP, recovery codes).
  'password',
  'passkey',
  'mfa',
  'mfa-enrol',
  'recovery-codes',
  'passkey-offer',
  'account',
  'account-totp',
  'account-sign-out',
  // Tenants: the organisation picker and the single sign-on page.
  'tenant-picker',
  'tenant-sso',
  // "Forgot your password?": the request during a sign-in, and the page the emailed link opens.
  'password-forgot',
  'password-reset',
  // The page an email address confirmation link opens, and the sign-in step that waits for it
  // (a realm with requireVerifiedEmail).
  'verify-email',
  'verify-email-pending',
  // Sign-up with email configured: the code sent to the address.
  'signup-code',
  // The page an email change confirmation link opens.
  'change-email',
  // After a sign-out: the applications' front-channel logout iframes (src/oidc/frontchannel-logout.ts).
  'frontchannel-logout',
]);

export function viewsDir(): string {
  return join(projectRoot(), 'views');
}

/** The folder holding the static assets served under `/assets/` (e.g. latchkey.css). */
export function assetsDir(): string {
  return join(viewsDir(), 'assets');
}

/** Helpers visible to templates as `h` (declared through Eta's functionHeader). */
const templateHelpers = {
  /** The URL if it is an absolute http(s) URL, otherwise undefined. */
  safeUrl: safeHttpUrl,
  /** A same-site path ("/account") or an absolute http(s) URL for a link, otherwise undefined. */
  safeLink,
  /** ` data-lk-<key>="<value>"` attributes (escaped) for the layout's <main> element. */
  dataAttributes,
  /** A QR-code SVG from the server's QR library, or '' if it does not look like one. */
  safeSvg,
  /** A TOTP secret in groups of four characters ("ABCD EFGH …") for typing by hand. */
  groupSecret,
};

class LatchkeyEta extends Eta {
  readonly helpers = templateHelpers;
}

let engine: LatchkeyEta | undefined;
function eta(): LatchkeyEta {
  engine ??= new LatchkeyEta({
    views: viewsDir(),
    cache: true, // compiled templates are kept after the first read
    autoEscape: true,
    functionHeader: 'const h = this.helpers;',
  });
  return engine;
}

let cssVersion: string | undefined;
function stylesheetHref(): string {
  if (cssVersion === undefined) {
    try {
      const css = readFileSync(join(assetsDir(), 'latchkey.css'));
      cssVersion = createHash('sha256').update(css).digest('hex').slice(0, 12);
    } catch {
      cssVersion = '';
    }
  }
  return `${ASSETS_URL_PREFIX}/latchkey.css${cssVersion ? `?v=${cssVersion}` : ''}`;
}

/**
 * Render the page template `views/<name>.eta` with `data` (see the template headers for the keys
 * each page expects). `data.layout` holds the realm branding and page title; it is validated here:
 * the logo is dropped unless it is an http(s) URL, an invalid `lang` becomes "en", and an invalid
 * colour falls back to the default.
 */
export function renderPage(name: string, data: Record<string, unknown>): string {
  if (!PAGES.has(name)) throw new Error(`unknown page template: ${JSON.stringify(name)}`);
  const layout = normalizeLayout(data.layout);
  const context: Record<string, unknown> = { ...data, layout };
  if (name === 'device-code' && typeof context.form === 'string') {
    context.form = prepareUserCodeForm(context.form, Boolean(context.error));
  }
  if (typeof context.form === 'string') context.form = stripInlineHandlers(context.form);
  return eta().render(name, context);
}

function normalizeLayout(raw: unknown): NormalizedLayout {
  const l = (raw && typeof raw === 'object' ? raw : {}) as Partial<Record<keyof LayoutData, unknown>>;
  const realmName = typeof l.realmName === 'string' && l.realmName.trim() ? l.realmName.trim() : DEFAULT_REALM_NAME;
  const title = typeof l.title === 'string' ? l.title.trim() : '';
  const lang = typeof l.lang === 'string' && /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/.test(l.lang) ? l.lang : 'en';
  return {
    realmName,
    logoUrl: safeHttpUrl(l.logoUrl),
    title,
    lang,
    stylesheetHref: stylesheetHref(),
    realmStylesheetHref: realmCssHref(typeof l.primaryColor === 'string' ? l.primaryColor : undefined),
  };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for an HTML attribute value or element content. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * The `data-lk-*` attributes a page puts on the layout's `<main>` element (read by
 * /assets/passkeys.js), as a string starting with a space, or ''. Keys must be lower-case words
 * joined by dashes (others are dropped); values are escaped; undefined, null and '' are skipped.
 */
export function dataAttributes(data: unknown): string {
  if (!data || typeof data !== 'object') return '';
  let out = '';
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (!/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/.test(key)) continue;
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
    out += ` data-lk-${key}="${escapeHtml(String(value))}"`;
  }
  return out;
}

/**
 * The QR code's SVG markup when it looks like what the `qrcode` library produces (a single <svg>
 * with shapes and presentation attributes), otherwise ''. The pages print it unescaped, so this is
 * a second line of defence: no scripts, event handlers, style attributes, foreign objects or links.
 */
export function safeSvg(svg: unknown): string {
  if (typeof svg !== 'string') return '';
  const trimmed = svg.trim().replace(/^<\?xml[^>]*\?>\s*/, '');
  if (!/^<svg[\s>]/.test(trimmed) || !/<\/svg>$/.test(trimmed)) return '';
  if (/<(?:script|style|foreignObject|iframe|a|image|use|animate|set)\b|\son[a-z]+\s*=|\sstyle\s*=|(?:xlink:)?href\s*=|javascript:/i.test(trimmed)) return '';
  return trimmed;
}

/** "JBSWY3DPEHPK3PXP" -> "JBSW Y3DP EHPK 3PXP" (whitespace in the input is dropped first). */
export function groupSecret(secret: unknown): string {
  if (typeof secret !== 'string') return '';
  return (secret.replace(/\s+/g, '').match(/.{1,4}/g) ?? []).join(' ');
}

/**
 * `value` if it is a path on this site ("/account/totp?x=1", not "//host" or "/\\host") or an
 * absolute http(s) URL, otherwise undefined: links the server builds can never be javascript: URLs.
 */
export function safeLink(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (/^\/(?![/\\])/.test(v) && !/[\u0000-\u001f\s]/.test(v)) return v;
  return safeHttpUrl(v);
}

/** `value` if it is an absolute http: or https: URL (normalised), otherwise undefined. */
export function safeHttpUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  try {
    const url = new URL(value.trim());
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Realm colour

/** `#rgb` / `#rrggbb` (case-insensitive) as lower-case `#rrggbb`, or undefined when invalid. */
export function normalizeColor(color: unknown): string | undefined {
  if (typeof color !== 'string') return undefined;
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color.trim());
  if (!m) return undefined;
  const hex = m[1]!.toLowerCase();
  return hex.length === 3 ? `#${[...hex].map((c) => c + c).join('')}` : `#${hex}`;
}

/**
 * The href of the realm stylesheet for a colour, or undefined when no override is needed
 * (invalid colour or the default one). The `/assets/realm.css` route should answer with
 * `realmCss(ctx.query.primary)` as text/css.
 */
export function realmCssHref(primaryColor?: string): string | undefined {
  const color = normalizeColor(primaryColor);
  if (!color || color === DEFAULT_PRIMARY_COLOR) return undefined;
  return `${ASSETS_URL_PREFIX}/realm.css?primary=${encodeURIComponent(color)}`;
}

type Rgb = [number, number, number];

function toRgb(hex: string): Rgb {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
}

function toHex(rgb: Rgb): string {
  return `#${rgb.map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0')).join('')}`;
}

function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [0, 1, 2].map((i) => a[i]! + (b[i]! - a[i]!) * t) as Rgb;
}

/** Move `color` towards `toward` until it reaches `ratio` contrast against every one of `surfaces`. */
function ensureContrast(color: Rgb, surfaces: readonly string[], toward: Rgb, ratio: number): Rgb {
  for (let t = 0; t <= 1.0001; t += 0.02) {
    const candidate = mix(color, toward, t).map(Math.round) as Rgb;
    if (surfaces.every((surface) => contrast(candidate, toRgb(surface)) >= ratio)) return candidate;
  }
  return toward;
}

/** The CSS custom properties derived from a primary colour (light and dark schemes). */
export function realmPalette(primaryColor?: string): {
  primary: string;
  onPrimary: string;
  primaryHover: string;
  primaryText: string;
  primaryTextDark: string;
} {
  const primary = normalizeColor(primaryColor) ?? DEFAULT_PRIMARY_COLOR;
  const rgb = toRgb(primary);
  const white: Rgb = [255, 255, 255];
  const ink: Rgb = [17, 20, 24];
  const onWhite = contrast(rgb, white);
  const onInk = contrast(rgb, ink);
  const lightText = onWhite >= onInk;
  const label = lightText ? '#ffffff' : toHex(ink);
  // The button: the realm's colour, unless its label (white or ink, whichever is better) stays under
  // 4.5:1 on it, as on mid tones like #7a7a7a (WCAG 1.4.3); then it is moved away from the label
  // (darker under white, lighter under ink) just until the label reaches 4.5:1.
  const button = ensureContrast(rgb, [label], lightText ? [0, 0, 0] : white, 4.5);
  // A dark button label gets a lighter hover, a white label a darker one: contrast only improves.
  const hover = mix(button, lightText ? [0, 0, 0] : white, 0.14);
  return {
    primary: toHex(button),
    onPrimary: label,
    primaryHover: toHex(hover),
    // Links and focus rings: at least 4.5:1 against the card and its muted panels in each colour scheme.
    primaryText: toHex(ensureContrast(rgb, LIGHT_SURFACES, [0, 0, 0], 4.5)),
    primaryTextDark: toHex(ensureContrast(rgb, DARK_SURFACES, white, 4.5)),
  };
}

/**
 * The body of `/assets/realm.css`: overrides `--lk-primary` (and the colours derived from it) for a
 * realm. The colour must be `#rgb` or `#rrggbb`; anything else falls back to the default colour,
 * and the output is built only from parsed numbers, so nothing from the input reaches the CSS.
 */
export function realmCss(primaryColor?: string): string {
  const p = realmPalette(primaryColor);
  return [
    '/* Latchkey realm colours (generated) */',
    ':root {',
    `  --lk-primary: ${p.primary};`,
    `  --lk-on-primary: ${p.onPrimary};`,
    `  --lk-primary-hover: ${p.primaryHover};`,
    `  --lk-primary-text: ${p.primaryText};`,
    '}',
    '@media (prefers-color-scheme: dark) {',
    '  :root {',
    `    --lk-primary-text: ${p.primaryTextDark};`,
    '  }',
    '}',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// node-oidc-provider forms

/**
 * Remove on*="" event-handler attributes from provider-generated markup: a strict CSP blocks them
 * anyway (they would only produce violation reports). The provider's forms quote every attribute
 * value with double quotes and HTML-escape the values, so a value never contains `"` or `>`.
 */
function stripInlineHandlers(html: string): string {
  return html.replace(/<[a-zA-Z][^>]*>/g, (tag) => tag.replace(/\s+on[a-zA-Z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)/g, ''));
}

/** The id of the provider's `user_code` input on the device-code page (the "Code" label points at it). */
export const USER_CODE_INPUT_ID = 'lk-user-code';

/**
 * Give the provider's user_code input an id (so our <label for> reaches it), describe it by the
 * hint/error text, and drop the stray `</input>` the provider emits.
 */
function prepareUserCodeForm(form: string, hasError: boolean): string {
  return form
    .replace(/<\/input>/g, '')
    .replace(/<input\b[^>]*\bname="user_code"[^>]*>/, (tag) => {
      if (/\btype="hidden"/.test(tag)) return tag;
      let extra = '';
      if (!/\sid=/.test(tag)) extra += ` id="${USER_CODE_INPUT_ID}"`;
      extra += ` aria-describedby="lk-code-hint${hasError ? ' lk-error' : ''}"`;
      if (hasError) extra += ' aria-invalid="true"';
      if (!/\sautocapitalize=/.test(tag)) extra += ' autocapitalize="characters"';
      if (!/\sspellcheck=/.test(tag)) extra += ' spellcheck="false"';
      return tag.replace(/^<input\b/, `<input${extra}`);
    });
}

/** For tests: forget compiled templates (e.g. after editing a file). */
export function resetTemplateCache(): void {
  engine = undefined;
  cssVersion = undefined;
}
