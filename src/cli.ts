#!/usr/bin/env node
import { runCli } from './cli-main.js';
import { createProgram } from './program.js';

/** The `credit-edge` executable (package.json bin; `npm link` puts it on the PATH). */
runCli(createProgram());
