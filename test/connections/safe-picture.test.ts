import { describe, expect, it } from 'vitest';
import { DEFAULT_SAFE_IMAGE_HOSTS } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { safePicture } from '../../src/connections/safe-picture.js';

const hosts = [...DEFAULT_SAFE_IMAGE_HOSTS];

describe('upstream avatars: the safe image host allow-list', () => {
  it('keeps https pictures from Google, secure Gravatar and Slack', () => {
    for (const url of [
      'https://lh3.googleusercontent.com/a/ACg8ocJ=s96-c',
      'https://lh5.googleusercontent.com/photo.jpg',
      'https://secure.gravatar.com/avatar/205e460b479e2e5b48aec07710c08d50?s=200',
      'https://avatars.slack-edge.com/2024-01-01/123_abc_192.png',
    ]) {
      expect(safePicture(url, hosts)).toBe(new URL(url).href);
    }
  });

  it('drops everything else', () => {
    for (const url of [
      'http://lh3.googleusercontent.com/a/x', // not https
      'https://avatars.githubusercontent.com/u/1', // not on the list
      'https://googleusercontent.com/x', // "*." needs a subdomain
      'https://evil-googleusercontent.com/x',
      'https://lh3.googleusercontent.com.evil.test/x',
      'https://www.gravatar.com/avatar/x', // only secure.gravatar.com
      'https://user:pw@secure.gravatar.com/avatar/x',
      'https://secure.gravatar.com:8443/avatar/x',
      'javascript:alert(1)',
      'data:image/png;base64,AAAA',
      '//secure.gravatar.com/avatar/x',
      'not a url',
      '',
    ]) {
      expect(safePicture(url, hosts), url).toBeUndefined();
    }
    expect(safePicture(42, hosts)).toBeUndefined();
    expect(safePicture(undefined, hosts)).toBeUndefined();
    expect(safePicture(`https://secure.gravatar.com/${'a'.repeat(2100)}`, hosts)).toBeUndefined();
  });

  it('matches host names case-insensitively and honours a configured list', () => {
    expect(safePicture('https://SECURE.Gravatar.com/avatar/x', hosts)).toBe('https://secure.gravatar.com/avatar/x');
    expect(safePicture('https://img.example.com/a.png', ['img.example.com'])).toBe('https://img.example.com/a.png');
    expect(safePicture('https://secure.gravatar.com/avatar/x', ['img.example.com'])).toBeUndefined();
    expect(safePicture('https://secure.gravatar.com/avatar/x', [])).toBeUndefined();
  });

  it('federation.safeImageHosts defaults to the list and accepts host names only', () => {
    const env = { LATCHKEY_SECRET: 'x'.repeat(40) };
    expect(loadConfig({ env, cwd: '/nonexistent-dir' }).federation.safeImageHosts).toEqual(hosts);
    expect(loadConfig({ env, cwd: '/nonexistent-dir', overrides: { federation: { safeImageHosts: ['cdn.example.com', '*.example.org'] } } }).federation.safeImageHosts).toEqual(['cdn.example.com', '*.example.org']);
    expect(() => loadConfig({ env, cwd: '/nonexistent-dir', overrides: { federation: { safeImageHosts: ['https://cdn.example.com/'] } } })).toThrow(/safeImageHosts/);
  });
});
