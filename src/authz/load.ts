import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { LatchkeyConfig } from '../config/schema.js';
import type { AuthorizationModule } from './module.js';
import { allowAllModule, staticRulesModule } from './static-rules.js';

/** The static-rules option errors in one line, each naming its key (zod's own message is a JSON dump). */
function describeOptionIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const key = ['authorization', 'options', ...issue.path.map(String)].join('.');
      if (issue.code === 'unrecognized_keys') return `unknown configuration key ${issue.keys.map((k) => `"${key}.${k}"`).join(', ')}`;
      return `configuration key "${key}": ${issue.message}`;
    })
    .join('; ');
}

/**
 * Builds the configured authorization module: `allow-all` (default), `static-rules`, or a path to an
 * ES module exporting `createAuthorizationModule(options)`.
 */
export async function loadAuthorizationModule(cfg: LatchkeyConfig['authorization'], cwd = process.cwd()): Promise<AuthorizationModule> {
  switch (cfg.module) {
    case 'allow-all':
      return allowAllModule();
    case 'static-rules':
      try {
        return staticRulesModule(cfg.options);
      } catch (err) {
        if (err instanceof z.ZodError) throw new Error(describeOptionIssues(err));
        throw new Error(`configuration key "authorization.options": ${(err as Error).message}`);
      }
    default: {
      const path = isAbsolute(cfg.module) ? cfg.module : resolve(cwd, cfg.module);
      let mod: { createAuthorizationModule?: (o: unknown) => AuthorizationModule | Promise<AuthorizationModule> };
      try {
        mod = await import(pathToFileURL(path).href);
      } catch (err) {
        throw new Error(`configuration key "authorization.module": cannot load ${path}: ${(err as Error).message}`);
      }
      if (typeof mod.createAuthorizationModule !== 'function') {
        throw new Error(`configuration key "authorization.module": ${path} must export createAuthorizationModule(options)`);
      }
      const module = await mod.createAuthorizationModule(cfg.options);
      if (typeof module?.onIssue !== 'function' || typeof module?.check !== 'function') {
        throw new Error(`configuration key "authorization.module": ${path} returned an object without onIssue() and check()`);
      }
      return module;
    }
  }
}
