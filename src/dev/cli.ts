#!/usr/bin/env node
import { runCli } from '../cli-main.js';
import { createDevProgram } from './program.js';

/** The `credit-edge-dev` executable: the production CLI and the development kit (src/dev/program.ts). */
runCli(createDevProgram());
