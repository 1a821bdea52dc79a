import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { assetsDir } from '../../src/views/render.js';
import { loadStaticAssets, simpleWebAuthnBundlePath } from '../../src/views/static-assets.js';

const CONNECTION_ICONS = ['generic', 'google', 'github', 'entra', 'gitlab'].map((n) => `/assets/connections/${n}.svg`);
const PATHS = ['/assets/latchkey.css', '/assets/favicon.svg', '/assets/passkeys.js', '/assets/frontchannel-logout.js', '/assets/simplewebauthn-browser.js', ...CONNECTION_ICONS];
const text = (body: string | Buffer) => (typeof body === 'string' ? body : body.toString('utf8'));

describe('loadStaticAssets', () => {
  const assets = loadStaticAssets();

  it('has every asset, non-empty, with a content type and a quoted ETag', () => {
    expect([...assets.keys()].sort()).toEqual([...PATHS].sort());
    for (const [path, asset] of assets) {
      expect(asset.body.length, path).toBeGreaterThan(100);
      expect(asset.etag, path).toMatch(/^"[A-Za-z0-9_-]{16,}"$/);
    }
    expect(assets.get('/assets/latchkey.css')!.type).toBe('text/css; charset=utf-8');
    expect(assets.get('/assets/favicon.svg')!.type).toBe('image/svg+xml');
    expect(assets.get('/assets/passkeys.js')!.type).toBe('text/javascript; charset=utf-8');
    expect(assets.get('/assets/frontchannel-logout.js')!.type).toBe('text/javascript; charset=utf-8');
    expect(assets.get('/assets/simplewebauthn-browser.js')!.type).toBe('text/javascript; charset=utf-8');
    for (const icon of CONNECTION_ICONS) {
      expect(assets.get(icon)!.type).toBe('image/svg+xml');
      // local, self-contained images: no scripts, no external references
      expect(text(assets.get(icon)!.body), icon).not.toMatch(/<script|href=|url\(/i);
    }
  });

  it('serves the files as they are on disk; ETags differ per content and are stable', () => {
    expect(text(assets.get('/assets/latchkey.css')!.body)).toBe(readFileSync(join(assetsDir(), 'latchkey.css'), 'utf8'));
    expect(text(assets.get('/assets/passkeys.js')!.body)).toBe(readFileSync(join(assetsDir(), 'passkeys.js'), 'utf8'));
    expect(text(assets.get('/assets/frontchannel-logout.js')!.body)).toBe(readFileSync(join(assetsDir(), 'frontchannel-logout.js'), 'utf8'));
    const etags = [...assets.values()].map((a) => a.etag);
    expect(new Set(etags).size).toBe(etags.length);
    expect([...loadStaticAssets().values()].map((a) => a.etag)).toEqual(etags);
  });

  it('ships the @simplewebauthn/browser v14 UMD bundle', () => {
    expect(simpleWebAuthnBundlePath()).toMatch(/@simplewebauthn[\\/]browser[\\/]dist[\\/]bundle[\\/]index\.umd\.min\.js$/);
    const bundle = text(assets.get('/assets/simplewebauthn-browser.js')!.body);
    expect(bundle).toMatch(/^\/\* \[@simplewebauthn\/browser@14\./);
    expect(bundle).not.toContain('sourceMappingURL'); // no map file for browsers to ask for
  });

  it('the bundle defines the global passkeys.js uses, with the functions it calls', () => {
    const bundle = text(assets.get('/assets/simplewebauthn-browser.js')!.body);
    const script = text(assets.get('/assets/passkeys.js')!.body);
    const global = /window\.([A-Za-z]+);/.exec(script)?.[1];
    expect(global).toBe('SimpleWebAuthnBrowser');
    const sandbox: Record<string, any> = {};
    sandbox.globalThis = sandbox;
    sandbox.self = sandbox;
    runInNewContext(bundle, sandbox);
    const lib = sandbox[global!];
    expect(lib).toBeTypeOf('object');
    for (const fn of ['startAuthentication', 'startRegistration', 'browserSupportsWebAuthn', 'browserSupportsWebAuthnAutofill']) {
      expect(lib[fn], fn).toBeTypeOf('function');
      expect(script, `passkeys.js calls ${fn}`).toContain(`lib.${fn}`);
    }
    expect(lib.WebAuthnAbortService.cancelCeremony).toBeTypeOf('function');
    expect(script).toContain('lib.WebAuthnAbortService.cancelCeremony()');
  });
});

describe('passkeys.js', () => {
  const file = join(assetsDir(), 'passkeys.js');
  const script = readFileSync(file, 'utf8');

  it('is valid JavaScript', () => {
    execFileSync(process.execPath, ['--check', file]);
  });

  it('runs without errors and without globals when the page has no passkey attributes, or no <main>', () => {
    const element = () => ({ getAttribute: () => null, hidden: true, addEventListener: () => {}, setAttribute: () => {}, removeAttribute: () => {} });
    for (const main of [element(), null]) {
      const sandbox: Record<string, any> = {
        document: { querySelector: () => main, getElementById: () => null, querySelectorAll: () => [], addEventListener: () => {} },
        SimpleWebAuthnBrowser: { browserSupportsWebAuthn: () => true },
      };
      sandbox.window = sandbox;
      const before = Object.keys(sandbox).sort();
      runInNewContext(script, sandbox);
      expect(Object.keys(sandbox).sort()).toEqual(before);
    }
  });

  it('uses the documented attributes, header and messages', () => {
    for (const s of [
      'data-lk-csrf',
      'data-lk-passkey-options',
      'data-lk-passkey-verify',
      'data-lk-conditional',
      'data-lk-register-options',
      'data-lk-register-verify',
      'data-lk-passkey-mode',
      "'lk-passkey-button'",
      "'lk-passkey-create'",
      "'lk-passkey-name'",
      "'lk-error'",
      "'x-csrf-token'",
      "credentials: 'same-origin'",
      "'content-type': 'application/json'",
      'The passkey request was cancelled or timed out. Try again.',
      'This authenticator is already registered.',
      'Something went wrong with the passkey. Try again.',
    ]) {
      expect(script).toContain(s);
    }
    expect(script).not.toMatch(/innerHTML|eval\(|new Function/);
  });
});
