import { ConfigError } from '../config/load.js';
import { LatchkeyError } from '../errors.js';
import { clientCommand } from './commands/client.js';
import { connectionCommand } from './commands/connection.js';
import { dbCommand } from './commands/db.js';
import { keysCommand } from './commands/keys.js';
import { migrateCommand } from './commands/migrate.js';
import { realmCommand } from './commands/realm.js';
import { secretsCommand } from './commands/secrets.js';
import { serveCommand } from './commands/serve.js';
import { tenantCommand } from './commands/tenant.js';
import { trustCommand } from './commands/trust.js';
import { userCommand } from './commands/user.js';
import { HelpRequested, notifyTo, UsageError, type Command, type CommandIo } from './context.js';

const COMMANDS: Command[] = [serveCommand, migrateCommand, realmCommand, clientCommand, userCommand, tenantCommand, keysCommand, secretsCommand, connectionCommand, trustCommand, dbCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'latchkey: an OpenID Connect identity provider',
    '',
    'usage: latchkey <command> [options]     (every command prints one JSON document on stdout)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `latchkey <command> --help` (or `latchkey help <command>`) for a command\'s options.',
    'An option\'s value that starts with "--" is written --option=VALUE; `--` ends the options.',
    'Configuration: config/latchkey.yaml (or LATCHKEY_CONFIG), DATABASE_URL, LATCHKEY_SECRET, LATCHKEY_ISSUER, PORT,',
    'LATCHKEY_TRUST_PROXY, LATCHKEY_ALLOW_PRIVATE_NETWORKS, LOG_LEVEL, LATCHKEY_SMTP_URL, LATCHKEY_EMAIL_FROM.',
  ].join('\n');
}

const commandHelp = (command: Command) => `${command.summary}\n\nusage: ${command.usage}\n`;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const defaultIo: CommandIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stdin: readStdin,
  stdinIsTerminal: () => Boolean(process.stdin.isTTY),
};

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const [name, ...args] = argv;
  notifyTo(io.stderr);
  if (name === '--help' || name === '-h' || name === 'help') {
    // `latchkey help user` is `latchkey user --help`
    const about = name === 'help' && args[0] !== undefined ? COMMANDS.find((c) => c.name === args[0]) : undefined;
    if (name === 'help' && args[0] !== undefined && !about) {
      io.stderr(`latchkey: unknown command "${args[0]}"\n\n${help()}\n`);
      return 2;
    }
    io.stdout(about ? commandHelp(about) : `${help()}\n`);
    return 0;
  }
  if (!name) {
    // a usage error: the help goes to stderr, so stdout never holds anything but JSON
    io.stderr(`latchkey: a command is needed\n\n${help()}\n`);
    return 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`latchkey: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  // `latchkey user --help`; after a subcommand, the command's options parser sees it (parse, HelpRequested)
  if (args[0] === '--help' || args[0] === '-h') {
    io.stdout(commandHelp(command));
    return 0;
  }
  try {
    const result = await command.run(args, io);
    io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout(commandHelp(command));
      return 0;
    }
    if (err instanceof UsageError) {
      io.stderr(`latchkey ${name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof LatchkeyError || err instanceof ConfigError) {
      io.stderr(`latchkey ${name}: ${err.message}\n`);
      return 1;
    }
    io.stderr(`latchkey ${name}: ${(err as Error)?.message ?? err}\n`);
    return 1;
  }
}
