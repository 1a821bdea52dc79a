import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { projectRoot } from '../../src/db/paths.js';

it('the documented example configuration is valid and matches the defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-example-'));
  mkdirSync(join(dir, 'config'));
  copyFileSync(join(projectRoot(), 'config/latchkey.example.yaml'), join(dir, 'config/latchkey.yaml'));
  const fromExample = loadConfig({ env: { LATCHKEY_SECRET: 'x'.repeat(40) }, cwd: dir });
  const defaults = loadConfig({ env: { LATCHKEY_SECRET: 'x'.repeat(40) }, cwd: mkdtempSync(join(tmpdir(), 'latchkey-defaults-')) });
  expect(fromExample.source.file).toBe(join(dir, 'config/latchkey.yaml'));
  const strip = (c: any) => ({ ...c, dataDir: undefined, database: { ...c.database, url: undefined }, source: undefined });
  expect(strip(fromExample)).toEqual(strip(defaults));
});
