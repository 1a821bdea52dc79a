import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type LatchkeyConfig } from './schema.js';

export class ConfigError extends Error {
  readonly code = 'config_invalid';
}

export interface LoadOptions {
  /** Environment to read (defaults to process.env); tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** Working directory relative paths resolve against. */
  cwd?: string;
  /** Extra settings merged over the file (tests). */
  overrides?: Record<string, unknown>;
}

/** Keys the environment can set, so that an error about one names the variable rather than the file. */
const ENV_KEYS: Record<string, string> = { 'server.port': 'PORT', 'server.trustProxy': 'LATCHKEY_TRUST_PROXY', 'database.url': 'DATABASE_URL', issuer: 'LATCHKEY_ISSUER', secret: 'LATCHKEY_SECRET', 'log.level': 'LOG_LEVEL', 'outbound.allowPrivateNetworks': 'LATCHKEY_ALLOW_PRIVATE_NETWORKS', 'email.smtpUrl': 'LATCHKEY_SMTP_URL', 'email.from': 'LATCHKEY_EMAIL_FROM' };

function describeIssues(error: z.ZodError, file: string | null, env: NodeJS.ProcessEnv = {}): string {
  const where = file ? ` in ${file}` : '';
  return error.issues
    .map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (issue.path.length ? `${issue.path.join('.')}.${k}` : k));
        return `unknown configuration key ${keys.map((k) => `"${k}"`).join(', ')}${where}`;
      }
      const variable = ENV_KEYS[key];
      return `configuration key "${key}"${variable && env[variable] ? ` (from environment variable ${variable})` : where}: ${issue.message}`;
    })
    .join('; ');
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)) {
      out[key] = deepMerge(prev as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      out[key] = value;
    }
  }
  return out;
}

/**
 * Loads config/latchkey.yaml (or LATCHKEY_CONFIG), applies environment overrides
 * (PORT, DATABASE_URL, LATCHKEY_SECRET, LATCHKEY_ISSUER, LATCHKEY_TRUST_PROXY, LATCHKEY_ALLOW_PRIVATE_NETWORKS, LOG_LEVEL, LATCHKEY_SMTP_URL,
 * LATCHKEY_EMAIL_FROM)
 * and validates the result. This is the only module that reads the environment.
 */
export function loadConfig(options: LoadOptions = {}): LatchkeyConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = env.LATCHKEY_CONFIG;
  const file = resolve(cwd, explicit ?? 'config/latchkey.yaml');
  let raw: Record<string, unknown> = {};
  let usedFile: string | null = null;
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot parse ${file}: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`${file} must contain a YAML mapping at the top level`);
    }
    raw = (parsed as Record<string, unknown>) ?? {};
    usedFile = file;
  } else if (explicit) {
    throw new ConfigError(`LATCHKEY_CONFIG points at ${file}, which does not exist`);
  }

  const fromEnv: Record<string, unknown> = {};
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = /^[0-9]{1,5}$/.test(env.PORT) ? Number(env.PORT) : NaN; // Number(" ") is 0, Number("0x50") 80
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError(`environment variable PORT must be an integer between 0 and 65535, got "${env.PORT}"`);
    }
    fromEnv.server = { port };
  }
  if (env.LATCHKEY_TRUST_PROXY) {
    const value = env.LATCHKEY_TRUST_PROXY.trim().toLowerCase();
    const yes = ['1', 'true', 'yes'].includes(value);
    // a typo must not quietly leave the proxy's X-Forwarded-* ignored (or honoured)
    if (!yes && !['0', 'false', 'no'].includes(value)) {
      throw new ConfigError(`environment variable LATCHKEY_TRUST_PROXY must be true or false (or 1/0, yes/no), got "${env.LATCHKEY_TRUST_PROXY}"`);
    }
    fromEnv.server = { ...(fromEnv.server as object), trustProxy: yes };
  }
  if (env.LATCHKEY_ALLOW_PRIVATE_NETWORKS) {
    const value = env.LATCHKEY_ALLOW_PRIVATE_NETWORKS.trim().toLowerCase();
    const yes = ['1', 'true', 'yes'].includes(value);
    if (!yes && !['0', 'false', 'no'].includes(value)) {
      throw new ConfigError(`environment variable LATCHKEY_ALLOW_PRIVATE_NETWORKS must be true or false (or 1/0, yes/no), got "${env.LATCHKEY_ALLOW_PRIVATE_NETWORKS}"`);
    }
    fromEnv.outbound = { allowPrivateNetworks: yes };
  }
  if (env.DATABASE_URL) fromEnv.database = { url: env.DATABASE_URL };
  if (env.LATCHKEY_ISSUER) fromEnv.issuer = env.LATCHKEY_ISSUER;
  if (env.LATCHKEY_SECRET) fromEnv.secret = env.LATCHKEY_SECRET;
  if (env.LOG_LEVEL) fromEnv.log = { level: env.LOG_LEVEL };
  if (env.LATCHKEY_SMTP_URL || env.LATCHKEY_EMAIL_FROM) {
    fromEnv.email = { ...(env.LATCHKEY_SMTP_URL ? { smtpUrl: env.LATCHKEY_SMTP_URL } : {}), ...(env.LATCHKEY_EMAIL_FROM ? { from: env.LATCHKEY_EMAIL_FROM } : {}) };
  }

  const merged = deepMerge(deepMerge(raw, fromEnv), options.overrides ?? {});
  // Unless an issuer is set, the default realm's issuer follows the port: `PORT=8080 npm start` serves
  // http://localhost:8080 (a random port, 0, keeps http://localhost:3000).
  const port = (merged.server as { port?: unknown } | undefined)?.port;
  if (merged.issuer === undefined && typeof port === 'number' && Number.isInteger(port) && port > 0 && port <= 65535) {
    merged.issuer = `http://localhost:${port}`;
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(describeIssues(result.error, usedFile, env));
  }
  const cfg = result.data;
  const issuerUrl = new URL(cfg.issuer);
  if (issuerUrl.search || issuerUrl.hash) throw new ConfigError(`configuration key "issuer": must not have a query or fragment`);
  if (issuerUrl.pathname !== '/') throw new ConfigError(`configuration key "issuer" (or LATCHKEY_ISSUER): must be an origin such as https://auth.example.com, without a path`);

  const dataDir = isAbsolute(cfg.dataDir) ? cfg.dataDir : resolve(cwd, cfg.dataDir);
  let url = cfg.database.url ?? `sqlite:${resolve(dataDir, 'latchkey.db')}`;
  if (url.startsWith('sqlite:') && url !== 'sqlite::memory:') {
    const path = url.slice('sqlite:'.length);
    if (!path) throw new ConfigError('DATABASE_URL / database.url "sqlite:" needs a file path, e.g. sqlite:./data/latchkey.db');
    url = `sqlite:${isAbsolute(path) ? path : resolve(cwd, path)}`;
  } else if (!/^postgres(ql)?:\/\//.test(url) && url !== 'sqlite::memory:') {
    throw new ConfigError(`DATABASE_URL / database.url must start with "sqlite:" or "postgres://", got "${url.split(':')[0]}:..."`);
  }

  let secret = cfg.secret;
  let secretFrom: LatchkeyConfig['source']['secretFrom'] = env.LATCHKEY_SECRET ? 'env' : 'config';
  if (!secret) {
    const secretFile = resolve(dataDir, 'dev-secret');
    if (existsSync(secretFile)) {
      secret = readFileSync(secretFile, 'utf8').trim();
      secretFrom = 'file';
      if (secret.length < 32) throw new ConfigError(`${secretFile} holds a secret shorter than 32 characters: delete the file to generate a new one, or set LATCHKEY_SECRET`);
    } else {
      mkdirSync(dirname(secretFile), { recursive: true });
      try {
        secret = randomBytes(32).toString('base64url');
        writeFileSync(secretFile, `${secret}\n`, { mode: 0o600, flag: 'wx' });
        secretFrom = 'generated';
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        secret = readFileSync(secretFile, 'utf8').trim(); // another process won the race
        secretFrom = 'file';
      }
    }
  }

  // a laptop (issuer on localhost) reaches its local upstreams; a deployment does not reach its own network
  const localIssuer = issuerUrl.hostname === 'localhost' || issuerUrl.hostname.endsWith('.localhost') || issuerUrl.hostname === '127.0.0.1' || issuerUrl.hostname === '[::1]';
  const outbound = { ...cfg.outbound, allowPrivateNetworks: cfg.outbound.allowPrivateNetworks ?? localIssuer };

  return {
    ...cfg,
    outbound,
    dataDir,
    database: { ...cfg.database, url },
    secret,
    source: { file: usedFile, secretFrom },
  } as LatchkeyConfig;
}
