/**
 * The static files served under `/assets/`: the stylesheet, the favicon, the passkey script and the
 * @simplewebauthn/browser bundle it drives. They are read once (at start-up) into memory, each with
 * its content type and a strong ETag derived from its bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ASSETS_URL_PREFIX, assetsDir } from './render.js';

export interface StaticAsset {
  /** The Content-Type to send. */
  type: string;
  body: string | Buffer;
  /** A strong ETag (quoted) of the body. */
  etag: string;
}

const WEBAUTHN_PACKAGE = '@simplewebauthn/browser';
const CONNECTION_ICONS = ['generic', 'google', 'github', 'entra', 'gitlab'];

/**
 * The path of @simplewebauthn/browser's UMD bundle (it defines the global `SimpleWebAuthnBrowser`).
 * The package exports only ".", so the bundle is found next to the package.json above its entry point.
 */
export function simpleWebAuthnBundlePath(): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(WEBAUTHN_PACKAGE));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === WEBAUTHN_PACKAGE) break;
      } catch {
        // not the package's own manifest (e.g. a nested {"type": "commonjs"}); keep going up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of ${WEBAUTHN_PACKAGE}`);
    dir = up;
  }
  return join(dir, 'dist', 'bundle', 'index.umd.min.js');
}

function asset(type: string, body: Buffer): StaticAsset {
  return { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * Every static asset by its URL path (`/assets/latchkey.css`, `/assets/favicon.svg`,
 * `/assets/passkeys.js`, `/assets/frontchannel-logout.js`, `/assets/simplewebauthn-browser.js`, `/assets/connections/<preset>.svg`).
 * Throws when a file is missing.
 */
export function loadStaticAssets(): Map<string, StaticAsset> {
  const dir = assetsDir();
  const css = 'text/css; charset=utf-8';
  const js = 'text/javascript; charset=utf-8';
  return new Map<string, StaticAsset>([
    [`${ASSETS_URL_PREFIX}/latchkey.css`, asset(css, readFileSync(join(dir, 'latchkey.css')))],
    [`${ASSETS_URL_PREFIX}/favicon.svg`, asset('image/svg+xml', readFileSync(join(dir, 'favicon.svg')))],
    [`${ASSETS_URL_PREFIX}/passkeys.js`, asset(js, readFileSync(join(dir, 'passkeys.js')))],
    [`${ASSETS_URL_PREFIX}/frontchannel-logout.js`, asset(js, readFileSync(join(dir, 'frontchannel-logout.js')))],
    [`${ASSETS_URL_PREFIX}/simplewebauthn-browser.js`, asset(js, readFileSync(simpleWebAuthnBundlePath()))],
    // connection icons: neutral monograms per preset and a key for generic connections
    ...CONNECTION_ICONS.map((name): [string, StaticAsset] => [`${ASSETS_URL_PREFIX}/connections/${name}.svg`, asset('image/svg+xml', readFileSync(join(dir, 'connections', `${name}.svg`)))]),
  ]);
}
