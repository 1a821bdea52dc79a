import { describe, expect, it } from 'vitest';
import { authenticatorName, normalizeAaguid } from '../../src/passkeys/aaguids.js';
import { dataAttributes, groupSecret, renderPage, safeLink, safeSvg } from '../../src/views/render.js';

const EVIL = '<script>alert(1)</script>';
const EVIL_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;';
const QUOTE_EVIL = '"><img src=x onerror=alert(1)>';

const layout = (over: Record<string, unknown> = {}) => ({ realmName: 'Acme', title: 'Sign in', ...over });

/** What the `qrcode` library's toString(uri, { type: 'svg' }) produces (shortened). */
const QR_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29" shape-rendering="crispEdges"><path fill="#ffffff" d="M0 0h29v29H0z"/><path stroke="#000000" d="M1 1.5h7m2 0h1"/></svg>\n';

const SCRIPTS = ['/assets/simplewebauthn-browser.js', '/assets/passkeys.js'];

const credential = (over: Record<string, unknown> = {}) => ({
  id: 'cred-1',
  name: 'MacBook',
  deviceLabel: 'Synced passkey',
  backedUp: true,
  authenticator: 'iCloud Keychain',
  createdAt: '3 March 2026',
  lastUsedAt: 'Never',
  renameAction: '/account/passkeys/cred-1/rename',
  deleteAction: '/account/passkeys/cred-1/delete',
  confirmNeeded: false,
  ...over,
});

/** Sample data for every page added with passkeys, TOTP and recovery codes (+ login with passkeys). */
const samples: Record<string, Record<string, unknown>> = {
  login: {
    layout: layout(),
    action: '/interaction/uid1/identify',
    abortAction: '/interaction/uid1/abort',
    csrf: 'tok-123',
    email: 'ada@example.com',
    clientName: 'Example App',
    error: 'Enter a valid email address.',
    signupUrl: '/signup',
    passkey: { optionsUrl: '/interaction/uid1/passkey/options', verifyUrl: '/interaction/uid1/passkey/verify' },
  },
  password: {
    layout: layout({ title: 'Enter your password' }),
    action: '/interaction/uid1/login',
    csrf: 'tok-123',
    email: 'ada@example.com',
    changeEmailAction: '/interaction/uid1/restart',
    abortAction: '/interaction/uid1/abort',
    clientName: 'Example App',
    error: 'Incorrect password.',
    passkey: { optionsUrl: '/interaction/uid1/passkey/options', verifyUrl: '/interaction/uid1/passkey/verify' },
  },
  passkey: {
    layout: layout({ title: 'Use your passkey' }),
    csrf: 'tok-123',
    email: 'ada@example.com',
    passkey: { optionsUrl: '/interaction/uid1/passkey/options', verifyUrl: '/interaction/uid1/passkey/verify' },
    changeEmailAction: '/interaction/uid1/restart',
    passwordUrl: '/interaction/uid1?method=password',
    recoveryUrl: '/interaction/uid1?method=recovery',
    clientName: 'Example App',
    error: 'That passkey is not registered.',
  },
  mfa: {
    layout: layout({ title: "Verify it's you" }),
    csrf: 'tok-123',
    securityKey: { optionsUrl: '/interaction/uid1/passkey/options', verifyUrl: '/interaction/uid1/passkey/verify' },
    totpAction: '/interaction/uid1/totp',
    recoveryAction: '/interaction/uid1/recovery',
    email: 'ada@example.com',
    error: 'That code did not work.',
  },
  'mfa-enrol': {
    layout: layout({ title: 'Set up a second step' }),
    csrf: 'tok-123',
    required: true,
    totp: { qrSvg: QR_SVG, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', action: '/interaction/uid1/totp/enrol' },
    securityKey: { optionsUrl: '/interaction/uid1/passkey/register/options', verifyUrl: '/interaction/uid1/passkey/register/verify' },
    skipAction: '/interaction/uid1/skip',
    error: 'That code did not work.',
  },
  'recovery-codes': {
    layout: layout({ title: 'Save your recovery codes' }),
    csrf: 'tok-123',
    codes: ['abcd-efgh-ijkl', 'mnop-qrst-uvwx', '2345-6789-abcd'],
    action: '/interaction/uid1/continue',
    downloadHref: 'javascript:alert(1)',
  },
  'passkey-offer': {
    layout: layout({ title: 'Create a passkey' }),
    csrf: 'tok-123',
    register: { optionsUrl: '/interaction/uid1/passkey/register/options', verifyUrl: '/interaction/uid1/passkey/register/verify' },
    skipAction: '/interaction/uid1/offer/skip',
    neverAction: '/interaction/uid1/offer/never',
    email: 'ada@example.com',
  },
  account: {
    layout: layout({ title: 'Your account' }),
    csrf: 'tok-123',
    user: { email: 'ada@example.com', name: 'Ada Lovelace' },
    flash: 'Passkey added.',
    credentials: [
      credential(),
      credential({
        id: 'cred-2',
        name: 'YubiKey',
        deviceLabel: 'Security key',
        backedUp: false,
        authenticator: 'YubiKey 5 Series with NFC',
        lastUsedAt: '1 April 2026',
        renameAction: '/account/passkeys/cred-2/rename',
        deleteAction: '/account/passkeys/cred-2/delete',
        confirmNeeded: true,
      }),
    ],
    register: { optionsUrl: '/account/passkeys/options', verifyUrl: '/account/passkeys/verify' },
    totp: { enrolled: true, removeAction: '/account/totp/remove', enrolUrl: '/account/totp' },
    recovery: { remaining: 7, regenerateAction: '/account/recovery/regenerate' },
    password: { set: true, action: '/account/password', minLength: 15 },
    signOutUrl: '/account/sign-out',
  },
  'account-sign-out': {
    layout: layout({ title: 'Sign out' }),
    csrf: 'tok-123',
    action: '/account/sign-out',
    backUrl: '/account',
  },
  'account-totp': {
    layout: layout({ title: 'Authenticator app' }),
    csrf: 'tok-123',
    totp: { qrSvg: QR_SVG, secret: 'JBSWY3DPEHPK3PXP', action: '/account/totp' },
    backUrl: '/account',
    error: 'That code did not work.',
  },
};
const pages = Object.keys(samples);
/** Pages whose sample needs the passkey scripts. */
const withScripts = new Set(['login', 'password', 'passkey', 'mfa', 'mfa-enrol', 'passkey-offer', 'account']);

type Tag = { name: string; raw: string; attrs: Record<string, string> };

/** Every start tag in the page with its attributes (quoted values only, which is all we emit). */
function tags(html: string): Tag[] {
  const out: Tag[] = [];
  for (const m of html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*\/?>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?/g)) attrs[a[1]!.toLowerCase()] = a[2] ?? a[3] ?? '';
    out.push({ name: m[1]!.toLowerCase(), raw: m[0], attrs });
  }
  return out;
}

function byId(html: string, id: string): Tag {
  const found = tags(html).filter((t) => t.attrs.id === id);
  expect(found, `element #${id}`).toHaveLength(1);
  return found[0]!;
}

function main(html: string): Tag {
  return tags(html).find((t) => t.name === 'main')!;
}

/** The input a visible <label for> with exactly this text points at. */
function labelled(html: string, text: string, nth = 0): Tag {
  const labels = [...html.matchAll(/<label for="([^"]+)">([^<]*)<\/label>/g)].filter((m) => m[2] === text);
  expect(labels.length, `label "${text}"`).toBeGreaterThan(nth);
  const input = tags(html).find((t) => (t.name === 'input' || t.name === 'textarea') && t.attrs.id === labels[nth]![1]);
  expect(input, `control for label "${text}"`).toBeDefined();
  return input!;
}

/** The <form> (raw markup, up to </form>) whose action is `action`. */
function form(html: string, action: string): string {
  const start = html.indexOf(`action="${action}"`);
  expect(start, `form ${action}`).toBeGreaterThan(-1);
  const open = html.lastIndexOf('<form', start);
  return html.slice(open, html.indexOf('</form>', start) + '</form>'.length);
}

describe('passkey, second-factor and account pages', () => {
  it.each(pages)('renders %s as a complete document with one h1 and the error region', (name) => {
    const html = renderPage(name, samples[name]!);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<h1\b/g)).toHaveLength(1);
    expect(html).toContain('<span class="lk-realm">Acme</span>');
    if (name !== 'recovery-codes' || samples[name]!.error) expect(byId(html, 'lk-error').attrs.role).toBe('alert');
    expect(html).toContain('<div id="lk-error" class="lk-alert" role="alert" aria-live="assertive">');
    // ids are unique
    const ids = tags(html).map((t) => t.attrs.id).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
    // every label points at an existing control
    for (const m of html.matchAll(/<label for="([^"]+)">/g)) expect(ids, `label for ${m[1]}`).toContain(m[1]);
  });

  it.each(pages)('%s has no inline style or script, only the external passkey scripts where needed', (name) => {
    const html = renderPage(name, samples[name]!);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/javascript:/i);
    for (const t of tags(html)) expect(Object.keys(t.attrs).filter((a) => a.startsWith('on')), t.raw).toEqual([]);
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(html.match(/<script\b/gi)?.length ?? 0).toBe(scripts.length);
    for (const s of scripts) {
      expect(s[2], 'no inline script content').toBe('');
      expect(s[1]).toMatch(/\sdefer\b/);
    }
    const srcs = scripts.map((s) => /src="([^"]+)"/.exec(s[1]!)?.[1]);
    expect(srcs).toEqual(withScripts.has(name) ? SCRIPTS : []);
  });

  it.each(pages)('every form on %s posts with the CSRF field', (name) => {
    const html = renderPage(name, samples[name]!);
    const forms = [...html.matchAll(/<form\b[\s\S]*?<\/form>/g)].map((m) => m[0]);
    expect(forms.length).toBeGreaterThan(0);
    for (const f of forms) {
      expect(f).toMatch(/^<form [^>]*method="post"/);
      expect(f).toContain('<input type="hidden" name="csrf" value="tok-123">');
    }
  });

  it('login: identifier first with passkey autofill and a hidden passkey button', () => {
    const html = renderPage('login', samples.login!);
    expect(html).toMatch(/<h1 class="lk-title">Sign in <span class="lk-title-to">to Example App<\/span><\/h1>/);
    const email = labelled(html, 'Email');
    expect(email.attrs).toMatchObject({ name: 'email', type: 'email', autocomplete: 'username webauthn', value: 'ada@example.com' });
    expect(html).not.toContain('type="password"');
    expect(form(html, '/interaction/uid1/identify')).toMatch(/<button [^>]*type="submit">Continue<\/button>/);
    expect(main(html).attrs).toMatchObject({
      'data-lk-csrf': 'tok-123',
      'data-lk-passkey-options': '/interaction/uid1/passkey/options',
      'data-lk-passkey-verify': '/interaction/uid1/passkey/verify',
      'data-lk-conditional': 'true',
    });
    const button = byId(html, 'lk-passkey-button');
    expect(button.name).toBe('button');
    expect(button.attrs.type).toBe('button');
    expect('hidden' in button.attrs).toBe(true);
    expect(html).toMatch(/<button id="lk-passkey-button"[^>]*>Sign in with a passkey<\/button>/);
    expect(html).toMatch(/<div class="lk-divider"[^>]*hidden><span>or<\/span><\/div>/);
    expect(html).toContain('<a href="/signup">Create an account</a>');
    expect(form(html, '/interaction/uid1/abort')).toContain('>Cancel</button>');
    expect(html).toContain('<p>Enter a valid email address.</p>');
  });

  it('login: no passkey endpoints -> no scripts, no button, no data attributes; unsafe sign-up links dropped', () => {
    const html = renderPage('login', { ...samples.login!, passkey: undefined, signupUrl: 'javascript:alert(1)' });
    expect(html).not.toContain('<script');
    expect(html).not.toContain('lk-passkey-button');
    expect(html).not.toContain('data-lk-');
    expect(html).not.toContain('Create an account');
    expect(renderPage('login', { ...samples.login!, signupUrl: '//evil.example/x' })).not.toContain('Create an account');
  });

  it('password: shows the email with "Not you?", a hidden email field and the password', () => {
    const html = renderPage('password', samples.password!);
    expect(html).toContain('<span class="lk-identity-email">ada@example.com</span>');
    expect(form(html, '/interaction/uid1/restart')).toMatch(/<button [^>]*type="submit"[^>]*>Not you\?<\/button>/);
    const f = form(html, '/interaction/uid1/login');
    // hidden, but a text field with autocomplete="username" so password managers pair it with the password
    const hiddenEmail = tags(f).find((t) => t.name === 'input' && t.attrs.name === 'email')!;
    expect(hiddenEmail.attrs).toMatchObject({ type: 'text', value: 'ada@example.com', autocomplete: 'username' });
    expect('hidden' in hiddenEmail.attrs && 'readonly' in hiddenEmail.attrs).toBe(true);
    expect(f).toMatch(/<button [^>]*type="submit">Sign in<\/button>/);
    const password = labelled(html, 'Password');
    expect(password.attrs).toMatchObject({ name: 'password', type: 'password', autocomplete: 'current-password', 'aria-describedby': 'lk-error' });
    expect('autofocus' in password.attrs).toBe(true);
    const button = byId(html, 'lk-passkey-button');
    expect(button.attrs['data-lk-passkey-mode']).toBe('identified');
    expect('hidden' in button.attrs).toBe(true);
    expect(html).toMatch(/>Use a passkey instead<\/button>/);
    expect(main(html).attrs['data-lk-conditional']).toBeUndefined();
    expect(main(html).attrs['data-lk-passkey-options']).toBe('/interaction/uid1/passkey/options');

    const plain = renderPage('password', { ...samples.password!, passkey: undefined, error: undefined });
    expect(plain).not.toContain('<script');
    expect(plain).not.toContain('lk-passkey-button');
    expect(labelled(plain, 'Password').attrs['aria-describedby']).toBeUndefined();
  });

  it('passkey: primary passkey button, fallbacks only when given', () => {
    const html = renderPage('passkey', samples.passkey!);
    const button = byId(html, 'lk-passkey-button');
    expect(button.attrs['data-lk-passkey-mode']).toBe('identified');
    expect(button.attrs.class).toContain('lk-button--primary');
    expect(html).toMatch(/>Sign in with your passkey<\/button>/);
    expect(html).toContain('<noscript>');
    expect(html).toContain('<a href="/interaction/uid1?method=password">Use your password instead</a>');
    expect(html).toContain('<a href="/interaction/uid1?method=recovery">Use a recovery code</a>');
    expect(form(html, '/interaction/uid1/restart')).toContain('>Not you?</button>');
    expect(main(html).attrs['data-lk-csrf']).toBe('tok-123');

    const bare = renderPage('passkey', { ...samples.passkey!, passwordUrl: undefined, recoveryUrl: undefined });
    expect(bare).not.toContain('Use your password instead');
    expect(bare).not.toContain('Use a recovery code');
  });

  it('mfa: security key, authenticator code and recovery code, each only when offered', () => {
    const html = renderPage('mfa', samples.mfa!);
    expect(html).toContain("Verify it's you</h1>");
    const button = byId(html, 'lk-passkey-button');
    expect(button.attrs['data-lk-passkey-mode']).toBe('second-factor');
    expect(html).toMatch(/>Use your security key or passkey<\/button>/);
    const code = labelled(html, 'Authentication code');
    expect(code.attrs).toMatchObject({ name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', pattern: '[0-9 ]*', maxlength: '10' });
    expect(code.attrs['aria-describedby']).toContain('lk-error');
    expect(form(html, '/interaction/uid1/totp')).toMatch(/<button [^>]*type="submit">Verify<\/button>/);
    expect(html).toMatch(/<details class="lk-details">\s*<summary>Use a recovery code<\/summary>/);
    const recovery = labelled(html, 'Recovery code');
    expect(recovery.attrs.name).toBe('code');
    expect(form(html, '/interaction/uid1/recovery')).toMatch(/<button [^>]*type="submit">Use recovery code<\/button>/);
    expect(main(html).attrs).toMatchObject({ 'data-lk-passkey-options': '/interaction/uid1/passkey/options', 'data-lk-passkey-verify': '/interaction/uid1/passkey/verify' });

    const totpOnly = renderPage('mfa', { ...samples.mfa!, securityKey: undefined, recoveryAction: undefined });
    expect(totpOnly).not.toContain('<script');
    expect(totpOnly).not.toContain('lk-passkey-button');
    expect(totpOnly).not.toContain('<details');
    expect('autofocus' in labelled(totpOnly, 'Authentication code').attrs).toBe(true);

    const recoveryOnly = renderPage('mfa', { ...samples.mfa!, securityKey: undefined, totpAction: undefined });
    expect(recoveryOnly).toContain('<details class="lk-details" open>');
    expect(recoveryOnly).not.toContain('Authentication code');

    const wrongRecovery = renderPage('mfa', { ...samples.mfa!, recoveryOpen: true });
    expect(wrongRecovery).toContain('<details class="lk-details" open>');
    expect(labelled(wrongRecovery, 'Recovery code').attrs['aria-invalid']).toBe('true');
    expect(labelled(wrongRecovery, 'Authentication code').attrs['aria-invalid']).toBeUndefined();
  });

  it('mfa-enrol: QR code, grouped secret, confirmation form and security key', () => {
    const html = renderPage('mfa-enrol', samples['mfa-enrol']!);
    expect(html).toContain('Your organisation requires a second step at sign-in');
    expect(html).toMatch(/<figure class="lk-qr" aria-label="QR code for your authenticator app"><svg [^>]*>/);
    expect(html).toContain(QR_SVG.trim());
    expect(html).toContain('<code>JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP</code>');
    const code = labelled(html, 'Authentication code');
    expect(code.attrs).toMatchObject({ name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' });
    expect(form(html, '/interaction/uid1/totp/enrol')).toMatch(/<button [^>]*type="submit">Verify and turn on<\/button>/);
    expect(byId(html, 'lk-passkey-create').attrs.type).toBe('button');
    expect(html).toMatch(/>Add a security key<\/button>/);
    expect(main(html).attrs).toMatchObject({
      'data-lk-csrf': 'tok-123',
      'data-lk-register-options': '/interaction/uid1/passkey/register/options',
      'data-lk-register-verify': '/interaction/uid1/passkey/register/verify',
    });
    expect(html).not.toContain('Skip for now'); // required

    const optional = renderPage('mfa-enrol', { ...samples['mfa-enrol']!, required: false, securityKey: undefined });
    expect(optional).not.toContain('requires a second step');
    expect(form(optional, '/interaction/uid1/skip')).toContain('>Skip for now</button>');
    expect(optional).not.toContain('<script');
    expect(optional).not.toContain('lk-passkey-create');
  });

  it('never prints a QR code that is not a plain SVG', () => {
    for (const bad of [
      '<svg onload="alert(1)"></svg>',
      '<svg><script>alert(1)</script></svg>',
      '<svg><a href="javascript:alert(1)"><path d="M0 0"/></a></svg>',
      '<svg style="x"></svg>',
      '<img src=x onerror=alert(1)>',
      '<svg></svg><script>alert(1)</script>',
      '<svg><foreignObject><div></div></foreignObject></svg>',
    ]) {
      const html = renderPage('account-totp', { ...samples['account-totp']!, totp: { ...(samples['account-totp']!.totp as object), qrSvg: bad } });
      expect(html, bad).not.toContain('<figure');
      expect(html).not.toContain('alert(1)');
      expect(safeSvg(bad)).toBe('');
    }
    expect(safeSvg(QR_SVG)).toBe(QR_SVG.trim());
    expect(safeSvg(`<?xml version="1.0" encoding="utf-8"?>\n${QR_SVG}`)).toBe(QR_SVG.trim());
    expect(safeSvg(undefined)).toBe('');
  });

  it('recovery-codes: an ordered monospace list and the confirmation form', () => {
    const html = renderPage('recovery-codes', samples['recovery-codes']!);
    expect(html).toContain('Save your recovery codes</h1>');
    expect(html).toMatch(/<ol class="lk-codes"[^>]*>\s*<li><code>abcd-efgh-ijkl<\/code><\/li>\s*<li><code>mnop-qrst-uvwx<\/code><\/li>\s*<li><code>2345-6789-abcd<\/code><\/li>\s*<\/ol>/);
    expect(html).toContain('Each code works only once.');
    expect(form(html, '/interaction/uid1/continue')).toMatch(/<button [^>]*type="submit">I have saved my codes<\/button>/);
    expect(html).not.toContain('href="javascript');
    // the codes as a text file, made in the page (a data: link with download)
    const link = /<a class="[^"]*" download="recovery-codes.txt" href="data:text\/plain;charset=utf-8,([^"]+)">Download the codes<\/a>/.exec(html);
    expect(link, 'download link').not.toBeNull();
    const text = decodeURIComponent(link![1]!);
    expect(text.split('\n').filter((l) => /^[a-z0-9]{4}-/.test(l))).toEqual(['abcd-efgh-ijkl', 'mnop-qrst-uvwx', '2345-6789-abcd']);
    expect(text).toContain('Each code works only once.');
    const again = renderPage('recovery-codes', { ...samples['recovery-codes']!, codes: [], alreadyShown: true });
    expect(again).not.toContain('<ol');
    expect(again).not.toContain('download=');
    expect(again).toContain('already shown');
  });

  it('passkey-offer: create button and the two ways out', () => {
    const html = renderPage('passkey-offer', samples['passkey-offer']!);
    expect(html).toContain('Create a passkey for faster sign-in</h1>');
    expect(html).toMatch(/<button id="lk-passkey-create"[^>]*hidden>Create a passkey<\/button>/);
    expect(form(html, '/interaction/uid1/offer/skip')).toContain('>Not now</button>');
    expect(form(html, '/interaction/uid1/offer/never')).toContain(">Don't ask again</button>");
    expect(main(html).attrs).toMatchObject({
      'data-lk-register-options': '/interaction/uid1/passkey/register/options',
      'data-lk-register-verify': '/interaction/uid1/passkey/register/verify',
    });
    expect(renderPage('passkey-offer', { ...samples['passkey-offer']!, neverAction: undefined })).not.toContain("Don't ask again");
    expect(renderPage('passkey-offer', { ...samples['passkey-offer']!, recovered: true })).toContain('You signed in with a recovery code.');
  });

  it('account: credentials with rename and delete, add-passkey controls, TOTP and recovery sections', () => {
    const html = renderPage('account', samples.account!);
    expect(html).toContain('<div class="lk-flash" role="status"><p>Passkey added.</p></div>');
    expect(html).toContain('Ada Lovelace');
    // first credential
    expect(html).toContain('iCloud Keychain');
    expect(html).toContain('Synced passkey');
    const rename = form(html, '/account/passkeys/cred-1/rename');
    // the button says which passkey it renames, like the Delete button
    expect(rename).toMatch(/<button [^>]*type="submit" aria-label="Rename MacBook">Rename<\/button>/);
    const name = labelled(html, 'Name', 0);
    expect(name.attrs).toMatchObject({ name: 'name', maxlength: '64', value: 'MacBook' });
    const del = form(html, '/account/passkeys/cred-1/delete');
    expect(del).toMatch(/<button class="lk-button lk-button--danger[^"]*" type="submit" aria-label="Delete MacBook">Delete<\/button>/);
    expect(del).not.toContain('name="confirm"');
    // second credential needs a confirmation
    const del2 = form(html, '/account/passkeys/cred-2/delete');
    expect(del2).toMatch(/<input [^>]*name="confirm" type="checkbox" value="yes" required/);
    const confirm = labelled(html, 'I understand I will need a recovery code or another passkey to sign in');
    expect(confirm.attrs).toMatchObject({ type: 'checkbox', name: 'confirm', value: 'yes' });
    expect(del2).toContain('class="lk-warning"');
    expect(labelled(html, 'Name', 1).attrs.value).toBe('YubiKey');
    expect(html).toContain('1 April 2026');
    // backed up, in words
    expect(html.match(/<dt>Backed up<\/dt><dd>(Yes|No)<\/dd>/g)).toEqual(['<dt>Backed up</dt><dd>Yes</dd>', '<dt>Backed up</dt><dd>No</dd>']);
    // add a passkey
    const passkeyName = labelled(html, 'Passkey name');
    expect(passkeyName.attrs.id).toBe('lk-passkey-name');
    expect('required' in passkeyName.attrs).toBe(false);
    expect(html).toMatch(/<button id="lk-passkey-create"[^>]*hidden>Add a passkey<\/button>/);
    expect(main(html).attrs).toMatchObject({ 'data-lk-csrf': 'tok-123', 'data-lk-register-options': '/account/passkeys/options', 'data-lk-register-verify': '/account/passkeys/verify' });
    // TOTP on, recovery codes, sign out
    expect(html).toMatch(/Authenticator app: <span class="lk-strong">on<\/span>/);
    expect(form(html, '/account/totp/remove')).toContain('>Turn off</button>');
    expect(html).toContain('7 recovery codes left.');
    expect(form(html, '/account/recovery/regenerate')).toContain('>Create new recovery codes</button>');
    // signing out is a form button posting the CSRF token (a GET changes nothing)
    expect(form(html, '/account/sign-out')).toMatch(/<form class="lk-center" method="post" action="\/account\/sign-out">\s*<input type="hidden" name="csrf" value="tok-123">\s*<button class="lk-button lk-button--link" type="submit">Sign out<\/button>/);
    expect(html).not.toContain('href="/account/sign-out"');
  });

  it('account-sign-out: a Sign out button posting the CSRF token, and the way back', () => {
    const html = renderPage('account-sign-out', samples['account-sign-out']!);
    expect(form(html, '/account/sign-out')).toMatch(/method="post"[\s\S]*<input type="hidden" name="csrf" value="tok-123">[\s\S]*<button class="lk-button lk-button--primary lk-button--block" type="submit" autofocus>Sign out<\/button>/);
    expect(html).toContain('of Acme on this device.');
    expect(html).toContain('<a href="/account">Back to your account</a>');
  });

  it('account: a rename error marks its field; the last way to sign in is a warning without a checkbox', () => {
    const html = renderPage('account', {
      ...samples.account!,
      error: 'A passkey name can be at most 64 characters.',
      credentials: [
        credential({ invalidField: 'name', nameValue: 'typed <name>' }),
        credential({ id: 'cred-2', name: 'Phone', renameAction: '/r2', deleteAction: '/d2', confirmNeeded: true, locksOut: true }),
      ],
    });
    const name = labelled(html, 'Name', 0);
    expect(name.attrs).toMatchObject({ value: 'typed &lt;name&gt;', 'aria-invalid': 'true', 'aria-describedby': 'lk-error' });
    expect('autofocus' in name.attrs).toBe(true);
    expect(labelled(html, 'Name', 1).attrs['aria-invalid']).toBeUndefined();
    const del2 = form(html, '/d2');
    expect(del2).toContain('This is your only way to sign in');
    expect(del2).not.toContain('name="confirm"');
    expect(del2).toMatch(/aria-label="Delete Phone" aria-describedby="lk-cred-1-warning">Delete<\/button>/);
  });

  it('account: empty states and TOTP off', () => {
    const html = renderPage('account', {
      ...samples.account!,
      flash: undefined,
      credentials: [],
      register: undefined,
      totp: { enrolled: false, enrolUrl: '/account/totp' },
      recovery: { remaining: 1, regenerateAction: '/r' },
    });
    expect(html).toContain('You have no passkeys yet.');
    expect(html).toContain('<div class="lk-flash" role="status"></div>');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('lk-passkey-create');
    expect(html).toContain('<a href="/account/totp">Set up an authenticator app</a>');
    expect(html).not.toContain('Turn off');
    expect(html).toContain('1 recovery code left.');
    expect(html).toMatch(/<p class="lk-warning">1 recovery code left\.<\/p>/);
  });

  it('account: the password form, to change a password or to add one', () => {
    const html = renderPage('account', samples.account!);
    const change = form(html, '/account/password');
    expect(change).toContain('name="csrf" value="tok-123"');
    expect(change).toContain('>Change password</button>');
    const first = labelled(html, 'New password');
    expect(first.attrs).toMatchObject({ name: 'new_password', type: 'password', autocomplete: 'new-password', 'aria-describedby': 'lk-new-password-hint' });
    expect(html).toContain('<p class="lk-hint" id="lk-new-password-hint">At least 15 characters.');
    expect(labelled(html, 'Confirm new password').attrs).toMatchObject({ name: 'new_password_again', type: 'password', autocomplete: 'new-password' });
    const signOut = labelled(html, 'Sign out of all other devices');
    expect(signOut.attrs).toMatchObject({ name: 'sign_out_others', type: 'checkbox', value: 'yes' });
    expect('checked' in signOut.attrs).toBe(true);
    // the account's email for password managers, not shown
    expect(change).toMatch(/<input type="text" name="username" autocomplete="username" value="[^"]+" hidden>/);
    expect(html).not.toContain('You sign in without a password.');

    const add = renderPage('account', { ...samples.account!, password: { set: false, action: '/account/password', minLength: 12 } });
    expect(form(add, '/account/password')).toContain('>Add a password</button>');
    expect(add).toContain('You sign in without a password.');
    expect(add).toContain('At least 12 characters.');

    const none = renderPage('account', { ...samples.account!, password: undefined });
    expect(none).not.toContain('/account/password');
  });

  it('account: no recovery codes yet is said plainly, not as a warning', () => {
    const html = renderPage('account', { ...samples.account!, recovery: { remaining: 0, regenerateAction: '/r' } });
    expect(html).toContain('<p>You have no recovery codes. They let you sign in when you cannot use your passkeys or authenticator app.</p>');
    expect(html).not.toContain('0 recovery codes left');
    expect(html).not.toContain('New codes replace all the ones you have now.');
    expect(form(html, '/r')).toContain('>Create recovery codes</button>');
  });

  it('account-totp: QR code, secret, confirmation and the way back', () => {
    const html = renderPage('account-totp', samples['account-totp']!);
    expect(html).toContain('<figure class="lk-qr" aria-label="QR code for your authenticator app"><svg');
    expect(html).toContain('<code>JBSW Y3DP EHPK 3PXP</code>');
    expect(labelled(html, 'Authentication code').attrs['aria-invalid']).toBe('true');
    expect(form(html, '/account/totp')).toMatch(/<button [^>]*type="submit">Verify and turn on<\/button>/);
    expect(html).toContain('<a href="/account">Back to your account</a>');
  });

  it.each(pages)('escapes user-supplied values on %s', (name) => {
    const data: Record<string, unknown> = {
      ...samples[name]!,
      layout: layout({ realmName: EVIL, title: EVIL }),
      clientName: EVIL,
      email: EVIL,
      error: EVIL,
      csrf: QUOTE_EVIL,
    };
    if (name === 'account') {
      data.user = { email: EVIL, name: EVIL };
      data.flash = EVIL;
      data.credentials = [credential({ name: EVIL, deviceLabel: EVIL, authenticator: EVIL, createdAt: EVIL, lastUsedAt: EVIL, renameAction: QUOTE_EVIL })];
    }
    if (name === 'recovery-codes') data.codes = [EVIL];
    if (name === 'mfa-enrol' || name === 'account-totp') data.totp = { qrSvg: QR_SVG, secret: EVIL, action: QUOTE_EVIL };
    if (name === 'login' || name === 'password' || name === 'passkey') data.passkey = { optionsUrl: QUOTE_EVIL, verifyUrl: EVIL };
    const html = renderPage(name, data);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain(`<title>${EVIL_ESCAPED} · ${EVIL_ESCAPED}</title>`);
    expect(html).toContain(EVIL_ESCAPED.slice(0, 12));
    for (const t of tags(html)) expect(Object.keys(t.attrs).filter((a) => a.startsWith('on')), t.raw).toEqual([]);
    if (name === 'account') expect(html).toContain(`aria-label="Delete ${EVIL_ESCAPED}"`);
    if (withScripts.has(name)) expect(main(html).attrs['data-lk-csrf']).toBe('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('template helpers', () => {
  it('dataAttributes escapes values and drops odd keys and empty values', () => {
    expect(dataAttributes({ csrf: 'a"b<c', 'passkey-options': '/o', conditional: 'true', empty: '', none: undefined })).toBe(
      ' data-lk-csrf="a&quot;b&lt;c" data-lk-passkey-options="/o" data-lk-conditional="true"',
    );
    expect(dataAttributes({ 'x" onclick="y': '1', Upper: '1', 'a--b': '1', obj: {} })).toBe('');
    expect(dataAttributes(undefined)).toBe('');
  });

  it('groupSecret and safeLink', () => {
    expect(groupSecret('JBSWY3DPEHPK3PXP')).toBe('JBSW Y3DP EHPK 3PXP');
    expect(groupSecret(' JBSW Y3DP EHP ')).toBe('JBSW Y3DP EHP');
    expect(groupSecret(undefined)).toBe('');
    expect(safeLink('/account?x=1')).toBe('/account?x=1');
    expect(safeLink('https://example.com/a')).toBe('https://example.com/a');
    for (const bad of ['javascript:alert(1)', '//evil.example', '/\\evil.example', 'relative', '/a b', undefined, 42]) expect(safeLink(bad), String(bad)).toBeUndefined();
  });
});

describe('authenticatorName', () => {
  it('names well-known passkey providers and security keys', () => {
    expect(authenticatorName('ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4')).toBe('Google Password Manager');
    expect(authenticatorName('fbfc3007-154e-4ecc-8c0b-6e020557d7bd')).toBe('iCloud Keychain');
    for (const id of ['08987058-cadc-4b81-b6e1-30de50dcbe96', '9ddd1817-af5a-4672-a2b9-3e3dd95000a9', '6028b017-b1d4-4c02-b4b3-afcdafc96bb2']) {
      expect(authenticatorName(id)).toBe('Windows Hello');
    }
    expect(authenticatorName('bada5566-a7aa-401f-bd96-45619a55120d')).toBe('1Password');
    expect(authenticatorName('d548826e-79b4-db40-a3d8-11116f7e8349')).toBe('Bitwarden');
    expect(authenticatorName('adce0002-35bc-c60a-648b-0b25f1f05503')).toBe('Chrome on Mac');
    expect(authenticatorName('531126d6-e717-415c-9320-3d9aa6981239')).toBe('Dashlane');
    expect(authenticatorName('53414d53-554e-4700-0000-000000000000')).toBe('Samsung Pass');
    expect(authenticatorName('cb69481e-8ff7-4039-93ec-0a2729a154a8')).toBe('YubiKey 5 Series');
    expect(authenticatorName('fa2b99dc-9e39-4257-8f92-4a30d23c4118')).toBe('YubiKey 5 Series with NFC');
  });

  it('accepts upper case and undashed AAGUIDs', () => {
    expect(authenticatorName('EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4')).toBe('Google Password Manager');
    expect(authenticatorName('ea9b8d664d011d213ce4b6b48cb575d4')).toBe('Google Password Manager');
    expect(normalizeAaguid(' EA9B8D664D011D213CE4B6B48CB575D4 ')).toBe('ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4');
  });

  it('names nothing for the zero AAGUID, unknown, malformed or missing values', () => {
    expect(authenticatorName('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(authenticatorName('12345678-1234-1234-1234-123456789abc')).toBeUndefined();
    for (const bad of ['', 'nope', 'toString', '__proto__', 'ea9b8d66', null, undefined]) expect(authenticatorName(bad)).toBeUndefined();
  });
});
