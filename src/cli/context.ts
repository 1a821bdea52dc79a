import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/load.js';
import { migrate } from '../db/knex.js';
import { LatchkeyError } from '../errors.js';
import { createServices, type Services } from '../server/services.js';
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
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\. To specify.*$/s, '')}\n\nusage: ${usage}`);
  }
}

export function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing required option --${flag}\n\nusage: ${usage}`);
  return value;
}

/** Opens the configured database (migrating it first) for commands that change or read it. */
export async function withServices<T>(fn: (s: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const services = await createServices(config, { log: pino({ level: 'silent' }) });
  try {
    await migrate(services.db);
    await services.realms.ensureDefault(config.issuer);
    return await fn(services);
  } finally {
    await services.close();
  }
}

export { LatchkeyError };
