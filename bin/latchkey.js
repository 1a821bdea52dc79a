#!/usr/bin/env node
// Entry point of the `latchkey` command; the code lives in dist/ (built by `npm install` / `npm run build`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`latchkey: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
