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

/**
 * `--help` is help only where it stands as an option: as the value an option is missing it is an error
 * naming that option, and after `--` it is no option at all. None of these runs reaches a database.
 */
describe('latchkey: --help, option values and --', () => {
  let dir: string;
  const cli = (args: string[]) => runCli({}, args, undefined, dir);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-help-options-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--help or -h among a subcommand\'s options prints the command\'s help, wherever it stands', async () => {
    const help = (await cli(['user', '--help'])).stdout;
    expect(help).toContain('usage: latchkey user create');
    for (const args of [['user', '-h'], ['user', 'create', '--help'], ['user', 'create', '--realm', 'default', '-h'], ['user', 'create', '--realm', 'default', '--email', 'a@b.c', '--help'], ['keys', 'repair', '--yes', '--help']]) {
      const res = await cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
      if (args[0] === 'user') expect(res.stdout, args.join(' ')).toBe(help);
      else expect(res.stdout, args.join(' ')).toContain('usage: latchkey keys');
    }
  });

  it('an option that needs a value and is followed by another option is an error naming it, not help', async () => {
    const cases: Array<[string[], string]> = [
      [['user', 'create', '--realm', 'default', '--email', 'a@b.c', '--name', '--help'], '--name needs a value (it is followed by the option --help'],
      [['user', 'create', '--realm', 'default', '--email', '-h'], '--email needs a value (it is followed by the option -h'],
      [['user', 'create', '--realm', '--email', 'a@b.c'], '--realm needs a value (it is followed by the option --email'],
      [['serve', '--port', '--help'], '--port needs a value'],
      [['user', 'create', '--realm', 'default', '--email'], '--email needs a value'],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stdout}`).toBe(2);
      expect(res.stdout, args.join(' ')).toBe('');
      expect(res.stderr, args.join(' ')).toContain(`latchkey ${args[0]}: ${message}`);
    }
  });

  it('-- ends the options: a --help after it is not help, and is refused as an argument the command does not take', async () => {
    const res = await cli(['user', 'create', '--realm', 'default', '--email', 'a@b.c', '--', '--help']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain("Unexpected argument '--help'");
  });
});
