#!/usr/bin/env node
import { createProgram } from './program.js';

/** The `credit-edge` executable (package.json bin; `npm link` puts it on the PATH). */
createProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`credit-edge: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
