import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/server.js';

/** Numeric option values: what is not a number is refused as a usage error (exit 2), never read as 0. */
describe('latchkey CLI: numeric option values', () => {
  let dir: string;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(env, args, undefined, dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-numbers-'));
    env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://numbers.localhost:4100' };
    const migrated = await cli(['migrate']);
    expect(migrated.code, migrated.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keys rotate refuses an empty, blank or non-decimal --activate-after instead of activating the new keys at once', async () => {
    const before = (await cli(['keys', 'list', '--realm', 'default'])).json.keys.length;
    for (const value of ['', ' ', '0x10', '1e3', '1.5', '-5']) {
      const res = await cli(['keys', 'rotate', '--realm', 'default', `--activate-after=${value}`]);
      expect(res.code, `--activate-after=${JSON.stringify(value)}: ${res.stdout}`).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('--activate-after');
    }
    expect((await cli(['keys', 'list', '--realm', 'default'])).json.keys.length).toBe(before);
    const ok = await cli(['keys', 'rotate', '--realm', 'default', '--activate-after', '120']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(Date.parse(ok.json.activate_at) - Date.now()).toBeGreaterThan(100_000);
  });

  it('serve refuses a bad --port as a usage error (exit 2)', async () => {
    for (const value of ['abc', '70000', '']) {
      const res = await cli(['serve', `--port=${value}`]);
      expect(res.code, `--port=${JSON.stringify(value)}: ${res.stderr}`).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('--port');
    }
  });
});
