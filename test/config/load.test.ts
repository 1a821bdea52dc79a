import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type LoadOptions } from '../../src/config/load.js';

const SECRET = 'k'.repeat(43);

/** A temporary folder with `yaml` as its config/latchkey.yaml (when given). */
function workspace(yaml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
  if (yaml !== undefined) {
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config', 'latchkey.yaml'), yaml);
  }
  return dir;
}

function load(yaml: string | undefined, env: NodeJS.ProcessEnv = {}, extra: Partial<LoadOptions> = {}) {
  const cwd = workspace(yaml);
  return { cwd, config: loadConfig({ env: { LATCHKEY_SECRET: SECRET, ...env }, cwd, ...extra }) };
}

/** The ConfigError thrown by loading `yaml` with `env`. */
function failure(yaml: string | undefined, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    load(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('config_invalid');
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('reads the YAML file and fills in defaults', () => {
    const { cwd, config } = load('server:\n  port: 4100\nissuer: https://id.example.test\npasswords:\n  minLength: 16\n');
    expect(config.server).toEqual({ host: '0.0.0.0', port: 4100, trustProxy: false });
    expect(config.issuer).toBe('https://id.example.test');
    expect(config.passwords.minLength).toBe(16);
    expect(config.passwords.maxLength).toBe(256);
    expect(config.passwords.hashPriority).toBe('idle');
    expect(config.bruteForce.maxFailuresPerAccount).toBe(30);
    expect(config.source.file).toBe(join(cwd, 'config', 'latchkey.yaml'));
    expect(config.dataDir).toBe(join(cwd, 'data'));
    expect(config.database.url).toBe(`sqlite:${join(cwd, 'data', 'latchkey.db')}`);
  });

  it('works without any file (defaults only)', () => {
    const { config } = load(undefined);
    expect(config.source.file).toBeNull();
    expect(config.server.port).toBe(3000);
    expect(config.issuer).toBe('http://localhost:3000');
  });

  it('without an issuer, the default issuer follows the port (file, PORT or override); a set issuer wins', () => {
    expect(load('server:\n  port: 4100\n').config.issuer).toBe('http://localhost:4100');
    expect(load(undefined, { PORT: '8080' }).config.issuer).toBe('http://localhost:8080');
    expect(load(undefined, {}, { overrides: { server: { port: 9090 } } }).config.issuer).toBe('http://localhost:9090');
    expect(load(undefined, { PORT: '0' }).config.issuer).toBe('http://localhost:3000');
    expect(load(undefined, { PORT: '8080', LATCHKEY_ISSUER: 'https://id.example.test' }).config.issuer).toBe('https://id.example.test');
    expect(load('issuer: https://file.example.test\n', { PORT: '8080' }).config.issuer).toBe('https://file.example.test');
  });

  it('reads the file LATCHKEY_CONFIG points at, and refuses a missing one', () => {
    const dir = workspace();
    const file = join(dir, 'custom.yaml');
    writeFileSync(file, 'server:\n  port: 4200\n');
    const config = loadConfig({ env: { LATCHKEY_SECRET: SECRET, LATCHKEY_CONFIG: file }, cwd: dir });
    expect(config.server.port).toBe(4200);
    expect(config.source.file).toBe(file);
    expect(() => loadConfig({ env: { LATCHKEY_SECRET: SECRET, LATCHKEY_CONFIG: join(dir, 'missing.yaml') }, cwd: dir })).toThrow(/missing\.yaml.*does not exist/);
  });

  describe('refuses bad files with a message naming the key', () => {
    it('an unknown nested key', () => {
      const err = failure('server:\n  prot: 3000\n');
      expect(err.message).toContain('"server.prot"');
      expect(err.message).toMatch(/unknown configuration key/);
      expect(err.message).toContain('latchkey.yaml');
    });

    it('an unknown top-level key', () => {
      expect(failure('isuer: https://id.example.test\n').message).toContain('"isuer"');
    });

    it('an unknown key deep down', () => {
      expect(failure('passwords:\n  argon2:\n    memory: 65536\n').message).toContain('"passwords.argon2.memory"');
    });

    it('a hash priority other than idle or normal', () => {
      const err = failure('passwords:\n  hashPriority: low\n');
      expect(err.message).toContain('"passwords.hashPriority"');
      expect(err.message).toMatch(/idle.*normal/);
      expect(load('passwords:\n  hashPriority: normal\n').config.passwords.hashPriority).toBe('normal');
    });

    it('a value of the wrong type', () => {
      const port = failure('server:\n  port: three-thousand\n');
      expect(port.message).toContain('"server.port"');
      expect(port.message).toMatch(/number/);
      expect(failure('server:\n  trustProxy: "yes please"\n').message).toContain('"server.trustProxy"');
      expect(failure('bruteForce:\n  maxFailuresPerAccount: -1\n').message).toContain('"bruteForce.maxFailuresPerAccount"');
      expect(failure('log:\n  level: verbose\n').message).toContain('"log.level"');
      expect(failure('issuer: not a url\n').message).toContain('"issuer"');
      expect(failure('server: 3000\n').message).toContain('"server"');
    });

    it('several problems are all reported', () => {
      const err = failure('server:\n  prot: 1\n  port: "x"\ndataDir: 5\n');
      expect(err.message).toContain('"server.prot"');
      expect(err.message).toContain('"server.port"');
      expect(err.message).toContain('"dataDir"');
    });

    it('unparseable YAML and a top level that is not a mapping', () => {
      expect(failure('server: [unclosed\n').message).toMatch(/cannot parse .*latchkey\.yaml/);
      expect(failure('- a\n- b\n').message).toMatch(/mapping/);
      expect(failure('just a string\n').message).toMatch(/mapping/);
    });

    it('an empty file is the defaults', () => {
      expect(load('').config.server.port).toBe(3000);
      expect(load('# only a comment\n').config.server.port).toBe(3000);
    });

    it('an issuer with a query or fragment', () => {
      expect(failure('issuer: https://id.example.test/?tenant=1\n').message).toMatch(/"issuer".*query or fragment/);
      expect(failure('issuer: https://id.example.test/#x\n').message).toMatch(/"issuer".*query or fragment/);
    });

    it('a secret in the file shorter than 32 characters', () => {
      const cwd = workspace('secret: too-short\n');
      expect(() => loadConfig({ env: {}, cwd })).toThrow(/"secret".*32/);
    });

    it('argon2 settings under the OWASP minimum', () => {
      expect(failure('passwords:\n  argon2:\n    memoryCost: 1024\n').message).toContain('"passwords.argon2.memoryCost"');
      expect(failure('passwords:\n  argon2:\n    timeCost: 1\n').message).toMatch(/"passwords\.argon2".*47104/);
    });
  });

  describe('environment overrides', () => {
    const yaml = 'server:\n  port: 4000\nissuer: https://file.example.test\ndatabase:\n  url: sqlite:./from-file.db\nsecret: file-secret-file-secret-file-secret-1234\n';

    it('PORT, DATABASE_URL, LATCHKEY_ISSUER and LATCHKEY_SECRET win over the file', () => {
      const cwd = workspace(yaml);
      const env = {
        PORT: '5055',
        DATABASE_URL: 'postgres://latchkey@db.example.test:5432/latchkey',
        LATCHKEY_ISSUER: 'https://env.example.test',
        LATCHKEY_SECRET: 'e'.repeat(40),
      };
      const config = loadConfig({ env, cwd });
      expect(config.server.port).toBe(5055);
      expect(config.server.host).toBe('0.0.0.0');
      expect(config.database.url).toBe(env.DATABASE_URL);
      expect(config.issuer).toBe(env.LATCHKEY_ISSUER);
      expect(config.secret).toBe(env.LATCHKEY_SECRET);
      expect(config.source.secretFrom).toBe('env');
    });

    it('without the environment the file values are used', () => {
      const cwd = workspace(yaml);
      const config = loadConfig({ env: {}, cwd });
      expect(config.server.port).toBe(4000);
      expect(config.issuer).toBe('https://file.example.test');
      expect(config.database.url).toBe(`sqlite:${join(cwd, 'from-file.db')}`);
      expect(config.secret).toBe('file-secret-file-secret-file-secret-1234');
      expect(config.source.secretFrom).toBe('config');
    });

    it('an empty environment variable is ignored', () => {
      const cwd = workspace(yaml);
      const config = loadConfig({ env: { PORT: '', DATABASE_URL: '', LATCHKEY_ISSUER: '', LATCHKEY_SECRET: '' }, cwd });
      expect(config.server.port).toBe(4000);
      expect(config.issuer).toBe('https://file.example.test');
      expect(config.source.secretFrom).toBe('config');
    });

    it('a relative sqlite DATABASE_URL is resolved against the working directory; postgresql:// is accepted', () => {
      expect(load(undefined, { DATABASE_URL: 'sqlite:db/here.db' }).config.database.url).toMatch(/^sqlite:\/.*\/db\/here\.db$/);
      const { cwd, config } = load(undefined, { DATABASE_URL: 'sqlite:db/here.db' });
      expect(config.database.url).toBe(`sqlite:${join(cwd, 'db', 'here.db')}`);
      expect(load(undefined, { DATABASE_URL: 'postgresql://u@h/d' }).config.database.url).toBe('postgresql://u@h/d');
      expect(load(undefined, { DATABASE_URL: 'sqlite::memory:' }).config.database.url).toBe('sqlite::memory:');
    });

    it('a bad PORT is refused, naming the variable', () => {
      // ' ' and '0x50' are numbers to Number() (0: a random port, and 80)
      for (const port of ['abc', '70000', '-1', '80.5', ' ', '0x50', '8e3']) {
        const err = failure(undefined, { PORT: port });
        expect(err.message).toContain('PORT');
        expect(err.message).toContain(port);
      }
    });

    it('a DATABASE_URL with an unsupported scheme is refused without echoing credentials', () => {
      for (const url of ['mysql://root:hunter2@db/latchkey', 'file:/tmp/x.db', 'postgres:/nohost', 'SQLITE:/tmp/x.db']) {
        const err = failure(undefined, { DATABASE_URL: url });
        expect(err.message).toMatch(/DATABASE_URL/);
        expect(err.message).toMatch(/sqlite:.*postgres:\/\//);
        expect(err.message).not.toContain('hunter2');
      }
      // the same check applies to database.url in the file
      expect(failure('database:\n  url: mongodb://x/y\n').message).toMatch(/database\.url/);
    });

    it('a LATCHKEY_SECRET shorter than 32 characters is refused, naming the variable rather than the file', () => {
      const err = failure('server:\n  port: 4000\n', { LATCHKEY_SECRET: 'short' });
      expect(err.message).toContain('"secret"');
      expect(err.message).toContain('LATCHKEY_SECRET');
      expect(err.message).toContain('32');
      expect(err.message).not.toContain('latchkey.yaml');
      expect(err.message).not.toContain('short"');
    });

    it('a bad LATCHKEY_ISSUER is refused, naming the variable', () => {
      const err = failure('server:\n  port: 4000\n', { LATCHKEY_ISSUER: 'not a url' });
      expect(err.message).toContain('"issuer"');
      expect(err.message).toContain('LATCHKEY_ISSUER');
      expect(err.message).not.toContain('latchkey.yaml');
      expect(failure(undefined, { LATCHKEY_ISSUER: 'https://id.example.test?x=1' }).message).toMatch(/query or fragment/);
      // the same mistake in the file names the file
      expect(failure('issuer: not a url\n').message).toMatch(/"issuer" in .*latchkey\.yaml/);
    });

    it('a sqlite: DATABASE_URL without a path is refused', () => {
      expect(failure(undefined, { DATABASE_URL: 'sqlite:' }).message).toMatch(/needs a file path/);
    });

    it('LATCHKEY_TRUST_PROXY and LOG_LEVEL', () => {
      expect(load(undefined, { LATCHKEY_TRUST_PROXY: 'true' }).config.server.trustProxy).toBe(true);
      expect(load(undefined, { LATCHKEY_TRUST_PROXY: 'YES' }).config.server.trustProxy).toBe(true);
      expect(load(undefined, { LATCHKEY_TRUST_PROXY: 'false' }).config.server.trustProxy).toBe(false);
      const both = load('server:\n  port: 4321\n', { LATCHKEY_TRUST_PROXY: '1' }).config.server;
      expect(both).toMatchObject({ port: 4321, trustProxy: true });
      const withPort = load(undefined, { LATCHKEY_TRUST_PROXY: '1', PORT: '4444' }).config.server;
      expect(withPort).toMatchObject({ port: 4444, trustProxy: true });
      expect(load(undefined, { LATCHKEY_TRUST_PROXY: 'No' }).config.server.trustProxy).toBe(false);
      expect(load(undefined, { LATCHKEY_TRUST_PROXY: '0' }).config.server.trustProxy).toBe(false);
      // a value that is neither yes nor no is refused, naming the variable, rather than read as false
      for (const value of ['ture', 'on', 'enabled']) {
        const err = failure(undefined, { LATCHKEY_TRUST_PROXY: value });
        expect(err.message).toContain('LATCHKEY_TRUST_PROXY');
        expect(err.message).toContain(value);
      }
      expect(load(undefined, { LOG_LEVEL: 'debug' }).config.log.level).toBe('debug');
      expect(failure(undefined, { LOG_LEVEL: 'loud' }).message).toContain('"log.level"');
    });

    it('outbound.allowPrivateNetworks: on for a localhost issuer, off for any other unless set; LATCHKEY_ALLOW_PRIVATE_NETWORKS', () => {
      expect(load(undefined).config.outbound.allowPrivateNetworks).toBe(true);
      expect(load(undefined, { LATCHKEY_ISSUER: 'https://auth.example.com' }).config.outbound.allowPrivateNetworks).toBe(false);
      expect(load('outbound:\n  allowPrivateNetworks: true\n', { LATCHKEY_ISSUER: 'https://auth.example.com' }).config.outbound.allowPrivateNetworks).toBe(true);
      expect(load('outbound:\n  allowPrivateNetworks: true\n', { LATCHKEY_ALLOW_PRIVATE_NETWORKS: '0' }).config.outbound.allowPrivateNetworks).toBe(false);
      expect(load(undefined, { LATCHKEY_ISSUER: 'https://auth.example.com', LATCHKEY_ALLOW_PRIVATE_NETWORKS: 'yes' }).config.outbound.allowPrivateNetworks).toBe(true);
      expect(load(undefined, { LATCHKEY_ALLOW_PRIVATE_NETWORKS: 'false' }).config.outbound.allowPrivateNetworks).toBe(false);
      const err = failure(undefined, { LATCHKEY_ALLOW_PRIVATE_NETWORKS: 'maybe' });
      expect(err.message).toContain('LATCHKEY_ALLOW_PRIVATE_NETWORKS');
      expect(err.message).toContain('maybe');
      expect(failure('outbound:\n  allowPrivateNetworks: sometimes\n').message).toMatch(/outbound\.allowPrivateNetworks/);
    });

    it('test overrides are merged over file and environment', () => {
      const cwd = workspace('server:\n  port: 4000\n  host: 10.0.0.1\n');
      const config = loadConfig({ env: { LATCHKEY_SECRET: SECRET, PORT: '4001' }, cwd, overrides: { server: { port: 4002 } } });
      expect(config.server).toMatchObject({ port: 4002, host: '10.0.0.1' });
    });
  });

  describe('development secret', () => {
    it('is generated once under dataDir (mode 0600) and reused afterwards', () => {
      const cwd = workspace('dataDir: ./state\n');
      const first = loadConfig({ env: {}, cwd });
      const file = join(cwd, 'state', 'dev-secret');
      expect(existsSync(file)).toBe(true);
      expect(first.source.secretFrom).toBe('generated');
      expect(first.secret.length).toBeGreaterThanOrEqual(32);
      expect(readFileSync(file, 'utf8').trim()).toBe(first.secret);
      expect(statSync(file).mode & 0o777).toBe(0o600);

      const second = loadConfig({ env: {}, cwd });
      expect(second.secret).toBe(first.secret);
      expect(second.source.secretFrom).toBe('file');
      expect(readFileSync(file, 'utf8').trim()).toBe(first.secret);
    });

    it('a different dataDir gets its own secret', () => {
      const a = loadConfig({ env: {}, cwd: workspace() });
      const b = loadConfig({ env: {}, cwd: workspace() });
      expect(a.secret).not.toBe(b.secret);
    });

    it('is neither written nor read when LATCHKEY_SECRET is set', () => {
      const cwd = workspace();
      const config = loadConfig({ env: { LATCHKEY_SECRET: SECRET }, cwd });
      expect(config.secret).toBe(SECRET);
      expect(existsSync(join(cwd, 'data', 'dev-secret'))).toBe(false);
    });

    it('an absolute dataDir is used as is', () => {
      const dataDir = join(workspace(), 'abs-data');
      const config = loadConfig({ env: {}, cwd: workspace(`dataDir: ${dataDir}\n`) });
      expect(config.dataDir).toBe(dataDir);
      expect(existsSync(join(dataDir, 'dev-secret'))).toBe(true);
      expect(config.database.url).toBe(`sqlite:${join(dataDir, 'latchkey.db')}`);
    });
  });
});
