import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { LatchkeyConfig } from '../config/schema.js';
import { migrate, migrationStatus } from '../db/knex.js';
import { InvalidFieldsError, LatchkeyError } from '../errors.js';
import { assertSecretOpensKeys, createServices, type Services } from '../server/services.js';
import pino from 'pino';

export class UsageError extends Error {}

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
  /** True when standard input is a terminal rather than a pipe or a file. */
  stdinIsTerminal?: () => boolean;
}

/**
 * What was piped to a `--...-stdin` option (`what` it is, for the message). Standard input that is a
 * terminal is refused, saying how to pipe the value in: nothing was piped, and the value must not be
 * typed where it shows on screen or in the shell's history.
 */
export async function readPiped(io: CommandIo, flag: string, what: string): Promise<string> {
  if (io.stdinIsTerminal?.()) {
    throw new UsageError(`${flag} reads ${what} from standard input, which is a terminal here: pipe it in, e.g. printf '%s\n' "$VALUE" | latchkey ... ${flag}, or redirect a file: latchkey ... ${flag} < FILE`);
  }
  return io.stdin();
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], io: CommandIo): Promise<unknown>;
}

/** `--help` or `-h` given as an option of a command: main prints the command's help instead of running it. */
export class HelpRequested extends Error {}

/** The options every command takes besides its own. */
const HELP_FLAGS = new Set(['--help', '-h']);

/**
 * Parses options strictly, so a mistyped flag is an error that names it, following the usual conventions:
 * `--help` or `-h` given as an option asks for the command's help (HelpRequested); an option that needs a
 * value takes the next argument unless that is another option (`--name --help` is "--name needs a value");
 * `--` ends the options, so nothing after it is read as one. A value that starts with one dash
 * (`--sort -email`, `--limit -1`) is taken as the value; one that starts with two is given as
 * `--name=--value`.
 */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  const isOption = (arg: string) => arg.startsWith('--') || HELP_FLAGS.has(arg);
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    if (HELP_FLAGS.has(arg)) throw new HelpRequested();
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (name === undefined || options[name]?.type !== 'string') {
      joined.push(arg);
      continue;
    }
    const next = args[i + 1];
    if (next === undefined || isOption(next)) {
      const hint = next === undefined || next === '--' ? '' : ` (it is followed by the option ${next}; a value that starts with "-" is given as --${name}=VALUE)`;
      throw new UsageError(`--${name} needs a value${hint}\n\nusage: ${usage}`);
    }
    // joined as --name=VALUE, so that parseArgs takes a value starting with a dash as the value
    joined.push(`--${name}=${next}`);
    i++;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: joined, options, allowPositionals: false, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\. To specify.*$/s, '')}\n\nusage: ${usage}`);
  }
  // parseArgs keeps the last of an option given twice: `--realm a ... --realm b` would act on b unasked
  const given = new Map<string, string[]>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || options[token.name]?.type !== 'string' || options[token.name]?.multiple) continue;
    given.set(token.name, [...(given.get(token.name) ?? []), token.value ?? '']);
  }
  for (const [name, values] of given) {
    if (values.length > 1) throw new UsageError(`--${name} is given ${values.length === 2 ? 'twice' : `${values.length} times`} (${values.map((v) => JSON.stringify(v)).join(', ')}): give it once\n\nusage: ${usage}`);
  }
  return parsed.values;
}

export function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing required option --${flag}\n\nusage: ${usage}`);
  return value;
}

/** Where progress and warnings go: stderr, so that stdout holds only the command's JSON (main sets it). */
let notify: (text: string) => void = (text) => process.stderr.write(text);

export function notifyTo(write: (text: string) => void): void {
  notify = write;
}

/**
 * Runs `fn`; a service's complaint about fields of its input (InvalidFieldsError) comes out naming the
 * flags the operator typed (`flagOf`, from the service's field name, e.g. `tokenEndpoint` to
 * `--token-endpoint`) instead of the service's names.
 */
export async function namingFlags<T>(flagOf: (field: string) => string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InvalidFieldsError) throw new LatchkeyError(err.code, err.describe(flagOf), err.status);
    throw err;
  }
}

/**
 * The services for a command that is not `serve`. Its argon2 helper runs at normal priority whatever
 * `passwords.hashPriority` says: that setting is for the server (ServicesOptions.hashPriority).
 */
export function commandServices(config: LatchkeyConfig): Promise<Services> {
  return createServices(config, { log: pino({ level: 'silent' }), hashPriority: 'normal' });
}

/**
 * Opens the configured database (migrating it first, and creating the default realm on a new database)
 * for commands that change or read it. The issuers of an existing default realm are left alone: that is
 * for `serve` and `migrate`. A secret that does not open the default realm's keys is refused, and so are
 * unreadable keys among them unless `allowUnreadableKeys`.
 */
export async function withServices<T>(fn: (s: Services) => Promise<T>, options: { allowUnreadableKeys?: boolean } = {}): Promise<T> {
  const config = loadConfig();
  const services = await commandServices(config);
  try {
    // A command upgrades the schema of an existing database as migrate would: say so, and what, before
    // it runs (it may take a while on a large database, and the servers' version must match the schema).
    const { applied, pending } = await migrationStatus(services.db);
    const upgrade = applied.length > 0 && pending.length > 0;
    if (upgrade) notify(`latchkey: upgrading the database schema first: applying ${pending.length} migration${pending.length > 1 ? 's' : ''} (${pending.join(', ')})...\n`);
    await migrate(services.db);
    if (upgrade) notify('latchkey: database schema upgraded\n');
    await services.realms.ensureDefault(config.issuer, { addIssuer: false });
    // the keys commands show and repair keys sealed with another secret (assertSecretOpensKeys)
    await assertSecretOpensKeys(services, { allowUnreadable: options.allowUnreadableKeys });
    return await fn(services);
  } finally {
    await services.close();
  }
}

export { LatchkeyError };
