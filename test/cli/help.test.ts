import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/server.js';

/** Help needs no database: these runs have none configured (the working folder is empty). */
describe('latchkey help', () => {
  let dir: string;
  const cli = (args: string[]) => runCli({}, args, undefined, dir);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-help-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('`latchkey help <command>` prints that command\'s options, as `latchkey <command> --help` does', async () => {
    for (const name of ['user', 'keys', 'connection', 'migrate']) {
      const viaHelp = await cli(['help', name]);
      const viaFlag = await cli([name, '--help']);
      expect(viaHelp.code, viaHelp.stderr).toBe(0);
      expect(viaHelp.stdout).toContain(`usage: latchkey ${name}`);
      expect(viaHelp.stdout).toBe(viaFlag.stdout);
    }
    const unknown = await cli(['help', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const general = await cli(['help']);
    expect(general.code).toBe(0);
    expect(general.stdout).toContain('latchkey help <command>');
  });
});
