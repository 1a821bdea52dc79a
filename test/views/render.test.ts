import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PRIMARY_COLOR,
  assetsDir,
  normalizeColor,
  realmCss,
  realmCssHref,
  realmPalette,
  renderPage,
  safeHttpUrl,
} from '../../src/views/render.js';

const EVIL = '<script>alert(1)</script>';
const EVIL_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;';

const layout = (over: Record<string, unknown> = {}) => ({
  realmName: 'Acme',
  title: 'Sign in',
  ...over,
});

// The markup node-oidc-provider 9 generates for its device-flow and logout forms.
const deviceInputForm = `<form id="op.deviceInputForm" novalidate method="post" action="/device">
  <input type="hidden" name="xsrf" value="abc123"/>
  <input
    type="text" name="user_code" placeholder="Enter code" onfocus="this.select(); this.onfocus = undefined;" autofocus autocomplete="off"></input>
  </form>`;
const deviceConfirmForm = `<form id="op.deviceConfirmForm" method="post" action="/device">
<input type="hidden" name="xsrf" value="abc123"/>
<input type="hidden" name="user_code" value="BCDF-GHJK"/>
<input type="hidden" name="confirm" value="yes"/>
</form>`;
const logoutForm = '<form id="op.logoutForm" method="post" action="/session/end/confirm"><input type="hidden" name="xsrf" value="abc123"/></form>';

/** Sample data for every page. */
const samples: Record<string, Record<string, unknown>> = {
  login: {
    layout: layout(),
    action: '/interaction/uid1/login',
    abortAction: '/interaction/uid1/abort',
    csrf: 'tok-123',
    email: 'ada@example.com',
    clientName: 'Example App',
    error: 'Invalid email or password.',
  },
  consent: {
    layout: layout({ title: 'Authorize' }),
    clientName: 'Example App',
    scopes: [
      { name: 'openid', description: 'Sign you in' },
      { name: 'email', description: 'See your email address' },
    ],
    claims: ['email', { name: 'name', description: 'Your name' }],
    account: 'ada@example.com',
    policyUri: 'https://example.com/privacy',
    tosUri: 'javascript:alert(1)',
    action: '/interaction/uid1/confirm',
    abortAction: '/interaction/uid1/abort',
    csrf: 'tok-123',
  },
  logout: { layout: layout({ title: 'Sign out' }), form: logoutForm, clientName: 'Example App' },
  'logged-out': { layout: layout({ title: 'Signed out' }), clientName: 'Example App' },
  error: { layout: layout({ title: 'Error' }), title: 'Request failed', message: 'The link has expired.', code: 'invalid_request' },
  'device-code': { layout: layout({ title: 'Connect a device' }), form: deviceInputForm, error: 'The code you entered is incorrect.' },
  'device-confirm': { layout: layout({ title: 'Confirm device' }), clientName: 'TV App', userCode: 'BCDF-GHJK', form: deviceConfirmForm },
  'device-done': { layout: layout({ title: 'Done' }), clientName: 'TV App' },
};
const pages = Object.keys(samples);

/** Every start tag in the page with its attributes (quoted values only, which is all we emit). */
function tags(html: string): Array<{ name: string; raw: string; attrs: Record<string, string> }> {
  const out: Array<{ name: string; raw: string; attrs: Record<string, string> }> = [];
  for (const m of html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*\/?>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?/g)) {
      attrs[a[1]!.toLowerCase()] = a[2] ?? a[3] ?? '';
    }
    out.push({ name: m[1]!.toLowerCase(), raw: m[0], attrs });
  }
  return out;
}

function labelTarget(html: string, text: string) {
  const m = new RegExp(`<label for="([^"]+)">${text}</label>`).exec(html);
  expect(m, `label "${text}"`).not.toBeNull();
  const input = tags(html).find((t) => t.name === 'input' && t.attrs.id === m![1]);
  expect(input, `input with id ${m![1]}`).toBeDefined();
  return input!;
}

describe('renderPage', () => {
  it.each(pages)('renders %s as a complete, accessible document', (name) => {
    const html = renderPage(name, samples[name]!);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<html lang="en">');
    expect(html).toMatch(/<header class="lk-header">/);
    expect(html).toMatch(/<main [^>]*>/);
    expect(html).toMatch(/<footer /);
    expect(html).toMatch(/<h1 /);
    expect(html).toContain('<meta name="viewport"');
    expect(html).toMatch(/<link rel="stylesheet" href="\/assets\/latchkey\.css(\?v=[0-9a-f]+)?">/);
    expect(html).toContain('<span class="lk-realm">Acme</span>');
    // Every page has exactly one <h1>.
    expect(html.match(/<h1\b/g)).toHaveLength(1);
  });

  it.each(pages)('%s has no inline style or script (strict CSP)', (name) => {
    const html = renderPage(name, samples[name]!);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/<script\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/javascript:/i);
    for (const t of tags(html)) {
      expect(Object.keys(t.attrs).filter((a) => a.startsWith('on')), t.raw).toEqual([]);
    }
  });

  it('renders the sign-in page', () => {
    const html = renderPage('login', samples.login!);
    expect(html).toContain('<title>Sign in · Acme</title>');
    expect(html).toMatch(/<h1 class="lk-title">Sign in <span class="lk-title-to">to Example App<\/span><\/h1>/);
    const form = tags(html).find((t) => t.name === 'form' && t.attrs.action === '/interaction/uid1/login');
    expect(form?.attrs.method).toBe('post');
    expect(html).toContain('<input type="hidden" name="csrf" value="tok-123">');
    expect(html.match(/name="csrf" value="tok-123"/g)).toHaveLength(2); // sign-in and cancel forms
    expect(html).toMatch(/<button [^>]*type="submit">Continue<\/button>/);
    // Identifier first: no password on this step, and no passkey scripts without passkey endpoints.
    expect(html).not.toContain('type="password"');
    expect(html).not.toContain('lk-passkey-button');
    expect(html).not.toMatch(/<main [^>]*data-lk-/);
    expect(html).toMatch(/<form [^>]*action="\/interaction\/uid1\/abort">\s*<input type="hidden" name="csrf" value="tok-123">\s*<button [^>]*type="submit">Cancel<\/button>/);
    expect(html).toContain('<div id="lk-error" class="lk-alert" role="alert" aria-live="assertive"><p>Invalid email or password.</p></div>');
  });

  it('labels Email and sets the expected input attributes', () => {
    const html = renderPage('login', samples.login!);
    const email = labelTarget(html, 'Email');
    expect(email.attrs).toMatchObject({ name: 'email', type: 'email', autocomplete: 'username webauthn', value: 'ada@example.com' });
    expect('required' in email.attrs).toBe(true);
    expect('autofocus' in email.attrs).toBe(true);
    expect(email.attrs['aria-describedby']).toBe('lk-error');
    expect(email.attrs['aria-invalid']).toBe('true');
  });

  it('focuses the email field on a fresh sign-in page and keeps the alert region empty', () => {
    const html = renderPage('login', { layout: layout(), action: '/a', csrf: 't' });
    const email = labelTarget(html, 'Email');
    expect('autofocus' in email.attrs).toBe(true);
    expect(email.attrs.value).toBe('');
    expect(email.attrs['aria-describedby']).toBeUndefined();
    expect(html).toContain('<div id="lk-error" class="lk-alert" role="alert" aria-live="assertive"></div>');
    expect(html).toMatch(/<h1 class="lk-title">Sign in<\/h1>/);
    expect(html).not.toContain('Cancel'); // no abortAction
  });

  it('renders the consent page', () => {
    const html = renderPage('consent', samples.consent!);
    expect(html).toMatch(/Example App<\/span> wants to access your account<\/h1>/);
    expect(html).toContain('See your email address');
    expect(html).toContain('<code class="lk-list-code">email</code>');
    expect(html).toContain('Your name');
    expect(html).toContain('Signed in as <span class="lk-strong">ada@example.com</span>');
    expect(html).toContain('<a href="https://example.com/privacy">privacy policy</a>');
    expect(html).not.toContain('terms of service'); // javascript: URL dropped
    expect(html).toMatch(/action="\/interaction\/uid1\/confirm">\s*<input type="hidden" name="csrf" value="tok-123">\s*<button [^>]*type="submit">Allow<\/button>/);
    expect(html).toMatch(/action="\/interaction\/uid1\/abort">\s*<input type="hidden" name="csrf" value="tok-123">\s*<button [^>]*type="submit">Deny<\/button>/);
  });

  it('omits the claims section when there are none', () => {
    const html = renderPage('consent', { ...samples.consent!, claims: undefined });
    expect(html).not.toContain('It will receive');
    expect(html).toContain('This will allow it to:');
  });

  it('renders the logout confirmation with the provider form unescaped', () => {
    const html = renderPage('logout', samples.logout!);
    expect(html).toContain('Sign out of Acme?');
    expect(html).toContain(logoutForm);
    expect(html).toMatch(/<button type="submit" form="op\.logoutForm" name="logout" value="yes"[^>]*>Yes, sign me out<\/button>/);
    expect(html).toMatch(/<button type="submit" form="op\.logoutForm"[^>]*>No, stay signed in<\/button>/);
  });

  it('renders the signed-out page with and without a client name', () => {
    expect(renderPage('logged-out', samples['logged-out']!)).toContain('You have signed out of Example App</h1>');
    expect(renderPage('logged-out', { layout: layout() })).toContain('You have signed out</h1>');
  });

  it('renders the error page without stack traces', () => {
    const html = renderPage('error', { ...samples.error!, stack: 'Error: boom\n    at secret (/srv/app.js:1:1)' });
    expect(html).toContain('Request failed</h1>');
    expect(html).toContain('The link has expired.');
    expect(html).toContain('<code>invalid_request</code>');
    expect(html).not.toContain('secret');
    const plain = renderPage('error', { layout: layout() });
    expect(plain).toContain('Something went wrong</h1>');
    expect(plain).not.toContain('Error code');
  });

  it('renders the device-code page with a labelled code input and no inline handler', () => {
    const html = renderPage('device-code', samples['device-code']!);
    expect(html).toContain('<form id="op.deviceInputForm"');
    const code = labelTarget(html, 'Code');
    expect(code.attrs.name).toBe('user_code');
    expect(code.attrs['aria-invalid']).toBe('true');
    expect(code.attrs['aria-describedby']).toBe('lk-code-hint lk-error');
    expect(html).not.toContain('onfocus');
    expect(html).not.toContain('</input>');
    expect(html).toMatch(/<button [^>]*type="submit" form="op\.deviceInputForm">Continue<\/button>/);
    expect(html).toContain('The code you entered is incorrect.');
  });

  it('renders the device confirmation page', () => {
    const html = renderPage('device-confirm', samples['device-confirm']!);
    expect(html).toMatch(/TV App<\/span> is asking to sign in on a device<\/h1>/);
    expect(html).toContain('<code>BCDF-GHJK</code>');
    expect(html).toContain(deviceConfirmForm);
    expect(html).toMatch(/<button type="submit" form="op\.deviceConfirmForm"[^>]*>Continue<\/button>/);
    expect(html).toMatch(/<button type="submit" form="op\.deviceConfirmForm" name="abort" value="yes"[^>]*>Cancel<\/button>/);
  });

  it('renders the device success page', () => {
    const html = renderPage('device-done', { layout: layout() });
    expect(html).toContain('Your device is signed in.</h1>');
    expect(html).toContain('You can close this window.');
  });

  it.each(pages)('escapes user-supplied values on %s', (name) => {
    const data: Record<string, unknown> = {
      ...samples[name]!,
      layout: layout({ realmName: EVIL, title: EVIL }),
      clientName: EVIL,
    };
    if (name === 'login') Object.assign(data, { email: `"><img src=x>${EVIL}`, error: EVIL, csrf: '"><b>' });
    if (name === 'consent') Object.assign(data, { scopes: [{ name: EVIL, description: EVIL }], claims: [EVIL], account: EVIL, error: EVIL });
    if (name === 'error') Object.assign(data, { title: EVIL, message: EVIL, code: EVIL });
    if (name === 'device-confirm') data.userCode = EVIL;
    if (name === 'device-code') data.error = EVIL;
    const html = renderPage(name, data);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img src=x>');
    expect(html).not.toContain('<b>');
    expect(html).toContain(EVIL_ESCAPED);
    expect(html).toContain(`<title>${EVIL_ESCAPED} · ${EVIL_ESCAPED}</title>`);
  });

  it('escapes the client name in the sign-in heading', () => {
    const html = renderPage('login', { ...samples.login!, clientName: EVIL });
    expect(html).toContain(`to ${EVIL_ESCAPED}</span>`);
  });

  it('shows the logo only for http(s) URLs, with the realm name as alt text', () => {
    const withLogo = renderPage('login', { ...samples.login!, layout: layout({ logoUrl: 'https://cdn.example.com/logo.png' }) });
    expect(withLogo).toContain('<img class="lk-logo" src="https://cdn.example.com/logo.png" alt="Acme">');
    expect(renderPage('login', { ...samples.login!, layout: layout({ logoUrl: 'http://example.com/l.svg' }) })).toContain(
      'src="http://example.com/l.svg"',
    );
    for (const bad of ['javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'data:image/svg+xml,<svg/>', '/logo.png', '//evil.example/x.png', 'vbscript:x', '']) {
      const html = renderPage('login', { ...samples.login!, layout: layout({ logoUrl: bad }) });
      expect(html, bad).not.toContain('<img');
      expect(html).not.toMatch(/javascript:|vbscript:|data:/i);
    }
  });

  it('escapes quotes in the logo URL and alt text', () => {
    const html = renderPage('login', { ...samples.login!, layout: layout({ realmName: 'A "B"', logoUrl: 'https://x.example/a"onerror="alert(1).png' }) });
    const img = tags(html).find((t) => t.name === 'img')!;
    expect(img.attrs.alt).toBe('A &quot;B&quot;');
    expect(Object.keys(img.attrs).sort()).toEqual(['alt', 'class', 'src']);
  });

  it('validates lang and falls back to en', () => {
    expect(renderPage('login', { ...samples.login!, layout: layout({ lang: 'de-CH' }) })).toContain('<html lang="de-CH">');
    expect(renderPage('login', { ...samples.login!, layout: layout({ lang: 'x"><script>' }) })).toContain('<html lang="en">');
  });

  it('copes with a missing layout', () => {
    const html = renderPage('device-done', {});
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('<title>Latchkey</title>');
  });

  it('links the realm stylesheet only for a valid, non-default colour', () => {
    const custom = renderPage('login', { ...samples.login!, layout: layout({ primaryColor: '#C0FFEE' }) });
    expect(custom).toContain('<link rel="stylesheet" href="/assets/realm.css?primary=%23c0ffee">');
    for (const color of [undefined, DEFAULT_PRIMARY_COLOR, 'red;}</style><script>', 'url(x)']) {
      const html = renderPage('login', { ...samples.login!, layout: layout({ primaryColor: color }) });
      expect(html).not.toContain('realm.css');
      expect(html).not.toContain('</style>');
    }
  });

  it('refuses unknown templates and partials', () => {
    expect(() => renderPage('../package', {})).toThrow(/unknown page/);
    expect(() => renderPage('partials/layout', {})).toThrow(/unknown page/);
    expect(() => renderPage('nope', {})).toThrow(/unknown page/);
  });

  it('returns identical output on repeated renders (cached templates)', () => {
    expect(renderPage('consent', samples.consent!)).toBe(renderPage('consent', samples.consent!));
  });
});

/** WCAG contrast ratio of two #rrggbb colours, computed here independently of render.ts. */
function ratio(a: string, b: string): number {
  const channel = (hex: string, i: number) => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const lum = (hex: string) => 0.2126 * channel(hex, 0) + 0.7152 * channel(hex, 1) + 0.0722 * channel(hex, 2);
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

describe('realmCss', () => {
  it('sets --lk-primary from a valid colour', () => {
    expect(realmCss('#123456')).toContain('--lk-primary: #123456;');
    expect(realmCss('#AbC')).toContain('--lk-primary: #aabbcc;');
  });

  it('rejects a malicious colour and falls back to the default', () => {
    for (const bad of ['red;}</style><script>alert(1)</script>', 'red;}</style>', 'red', '#12345', '#1234567', '#ggg', 'url(javascript:x)', '#fff;}body{x:y', '']) {
      const css = realmCss(bad);
      expect(css, bad).toBe(realmCss());
      expect(css).toContain(`--lk-primary: ${DEFAULT_PRIMARY_COLOR};`);
      expect(css).not.toMatch(/<|>|red|url|javascript/i);
    }
    expect(realmCss(undefined)).toContain(`--lk-primary: ${DEFAULT_PRIMARY_COLOR};`);
    expect(realmCss(42 as unknown as string)).toBe(realmCss());
  });

  it('contains only custom properties built from hex colours', () => {
    const css = realmCss('#ffeb3b');
    const values = [...css.matchAll(/--lk-[a-z-]+:\s*([^;]+);/g)].map((m) => m[1]);
    expect(values.length).toBeGreaterThanOrEqual(5);
    for (const v of values) expect(v).toMatch(/^#[0-9a-f]{6}$/);
  });

  it('picks readable button text and link colours', () => {
    expect(realmPalette('#ffeb3b').onPrimary).not.toBe('#ffffff'); // yellow gets dark text
    expect(realmPalette('#1a237e').onPrimary).toBe('#ffffff');
    // A pale colour is darkened for links on the white card.
    expect(realmPalette('#ffeb3b').primaryText).not.toBe('#ffeb3b');
  });

  it('keeps link text at 4.5:1 on the card and on its muted panels ("Not you?" sits on one), light and dark', () => {
    for (const colour of [undefined, '#2f5bea', '#0b7a5a', '#7a7a7a', '#ffcc00', '#e5484d', '#123456']) {
      const p = realmPalette(colour);
      for (const surface of ['#ffffff', '#f6f7f9']) expect(ratio(p.primaryText, surface), `${colour} light on ${surface}`).toBeGreaterThanOrEqual(4.5);
      for (const surface of ['#1b1f27', '#232833']) expect(ratio(p.primaryTextDark, surface), `${colour} dark on ${surface}`).toBeGreaterThanOrEqual(4.5);
    }
  });

  it('keeps the button label at 4.5:1 on the button for any realm colour, mid tones too (#7a7a7a: 4.3:1 with either label)', () => {
    const hex = (n: number) => n.toString(16).padStart(2, '0');
    const colours = ['#7a7a7a', '#e5484d', '#ff5722', '#2196f3', '#4caf50', '#9c27b0'];
    for (let v = 0; v <= 255; v += 5) colours.push(`#${hex(v)}${hex(v)}${hex(v)}`);
    for (const colour of colours) {
      const p = realmPalette(colour);
      expect(ratio(p.onPrimary, p.primary), `${colour}: ${p.onPrimary} on ${p.primary}`).toBeGreaterThanOrEqual(4.5);
      expect(ratio(p.onPrimary, p.primaryHover), `${colour}: ${p.onPrimary} on hover ${p.primaryHover}`).toBeGreaterThanOrEqual(4.5);
    }
    // colours that already work are kept as they are
    expect(realmPalette('#123456').primary).toBe('#123456');
    expect(realmPalette('#ffeb3b').primary).toBe('#ffeb3b');
    expect(realmPalette('#7a7a7a').primary).not.toBe('#7a7a7a');
  });

  it('matches the defaults written into latchkey.css', () => {
    const css = readFileSync(join(assetsDir(), 'latchkey.css'), 'utf8');
    const p = realmPalette();
    expect(css).toContain(`--lk-primary: ${p.primary};`);
    expect(css).toContain(`--lk-on-primary: ${p.onPrimary};`);
    expect(css).toContain(`--lk-primary-hover: ${p.primaryHover};`);
    expect(css).toContain(`--lk-primary-text: ${p.primaryText};`);
    expect(css).toContain(`--lk-primary-text: ${p.primaryTextDark};`);
  });
});

describe('helpers', () => {
  it('normalizeColor accepts only #rgb and #rrggbb', () => {
    expect(normalizeColor('#FFF')).toBe('#ffffff');
    expect(normalizeColor('#2f5bea')).toBe('#2f5bea');
    expect(normalizeColor('2f5bea')).toBeUndefined();
    expect(normalizeColor('rgb(1,2,3)')).toBeUndefined();
  });

  it('realmCssHref', () => {
    expect(realmCssHref('#abc')).toBe('/assets/realm.css?primary=%23aabbcc');
    expect(realmCssHref(DEFAULT_PRIMARY_COLOR)).toBeUndefined();
    expect(realmCssHref('nope')).toBeUndefined();
  });

  it('safeHttpUrl', () => {
    expect(safeHttpUrl('https://example.com/a b')).toBe('https://example.com/a%20b');
    expect(safeHttpUrl('javascript:alert(1)')).toBeUndefined();
    expect(safeHttpUrl('/relative')).toBeUndefined();
    expect(safeHttpUrl(undefined)).toBeUndefined();
  });

  it('assetsDir holds the stylesheet with a --lk-primary variable and .visually-hidden', () => {
    const file = join(assetsDir(), 'latchkey.css');
    expect(existsSync(file)).toBe(true);
    const css = readFileSync(file, 'utf8');
    expect(css).toContain('--lk-primary: #2f5bea');
    expect(css).toContain('.visually-hidden');
    expect(css).toContain('prefers-color-scheme: dark');
  });
});
