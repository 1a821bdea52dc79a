import { describe, expect, it, vi } from 'vitest';

/**
 * Every command's help lists exactly the flags its parser accepts, subcommand by subcommand. The parser
 * is the real one; the test only records the options each subcommand hands it (before it parses them:
 * `--help` makes it stop there, so no command gets further than its parser and none needs a database).
 */
const seen: Array<Record<string, unknown>> = [];
vi.mock('../../src/cli/context.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/cli/context.js')>();
  return {
    ...actual,
    parse: (args: string[], options: Record<string, unknown>, usage: string) => {
      seen.push(options);
      return actual.parse(args, options as never, usage);
    },
  };
});

const { clientCommand } = await import('../../src/cli/commands/client.js');
const { connectionCommand } = await import('../../src/cli/commands/connection.js');
const { keysCommand } = await import('../../src/cli/commands/keys.js');
const { migrateCommand } = await import('../../src/cli/commands/migrate.js');
const { realmCommand } = await import('../../src/cli/commands/realm.js');
const { secretsCommand } = await import('../../src/cli/commands/secrets.js');
const { serveCommand } = await import('../../src/cli/commands/serve.js');
const { tenantCommand } = await import('../../src/cli/commands/tenant.js');
const { trustCommand } = await import('../../src/cli/commands/trust.js');
const { userCommand } = await import('../../src/cli/commands/user.js');
const { HelpRequested } = await import('../../src/cli/context.js');

const COMMANDS = [serveCommand, migrateCommand, realmCommand, clientCommand, userCommand, tenantCommand, keysCommand, secretsCommand, connectionCommand, trustCommand];
const FLAG = /(?<![\w-])--[a-z][a-z0-9-]*/g;

/**
 * The usage's lines per subcommand (`''` for a command without any): a block starts at a line
 * `latchkey <command> <subcommand>` and runs to the next one or to a blank line (notes follow it).
 * `(and: enable)` names a subcommand that takes the same flags as the one its line is for.
 */
function blocks(name: string, usage: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of usage.split('\n')) {
    if (!line.trim()) {
      current = undefined;
      continue;
    }
    const start = new RegExp(`^\\s*latchkey ${name}(?: ([a-z][a-z-]*))?(?=\\s|$)`).exec(line);
    if (start) {
      current = start[1] ?? '';
      out.set(current, line.slice(start[0].length));
      for (const also of line.matchAll(/\(and: ([a-z-]+)/g)) out.set(also[1]!, out.get(current)!);
    } else if (current !== undefined) out.set(current, `${out.get(current)}\n${line}`);
  }
  return out;
}

describe('latchkey <command> --help lists the flags the parser accepts', () => {
  for (const command of COMMANDS) {
    it(`${command.name}`, async () => {
      const subcommands = blocks(command.name, command.usage);
      expect(subcommands.size, command.usage).toBeGreaterThan(0);
      for (const [sub, text] of subcommands) {
        seen.length = 0;
        const args = sub ? [sub, '--help'] : ['--help'];
        await expect(command.run(args, { stdout: () => undefined, stderr: () => undefined, stdin: async () => '' }), `${command.name} ${sub}`).rejects.toBeInstanceOf(HelpRequested);
        expect(seen, `${command.name} ${sub} parses its options once`).toHaveLength(1);
        const accepted = Object.keys(seen[0]!).map((k) => `--${k}`).sort();
        const listed = [...new Set(text.match(FLAG) ?? [])].sort();
        expect(listed, `latchkey ${command.name} ${sub}: the help's flags, against the parser's`).toEqual(accepted);
      }
    });
  }
});
