import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { LatchkeyConfig } from '../config/schema.js';
import { migrate } from '../db/knex.js';
import { InvalidFieldsError, LatchkeyError } from '../errors.js';
import { assertSecretOpensKeys, createServices, type Services } from '../server/services.js';
import pino from 'pino';

export class UsageError extends Error {}

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], io: CommandIo): Promise<unknown>;
}

/** Parses options strictly, so a mistyped flag is an error that names it. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  // A value that starts with one dash (`--sort -email`, as the usage shows it) is taken as the value:
  // parseArgs would refuse it as ambiguous and ask for `--sort=-email`. A value that looks like a long
  // option (`--name --public`) still is not, so a forgotten value is still an error.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') && !args[i].includes('=') ? args[i].slice(2) : undefined;
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-[^-]/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(args[i]);
    }
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
    await migrate(services.db);
    await services.realms.ensureDefault(config.issuer, { addIssuer: false });
    // the keys commands show and repair keys sealed with another secret (assertSecretOpensKeys)
    await assertSecretOpensKeys(services, { allowUnreadable: options.allowUnreadableKeys });
    return await fn(services);
  } finally {
    await services.close();
  }
}

export { LatchkeyError };
