/**
 * The SIPp runner lives in src/dev/sipp.ts (the demo and the benchmark start SIPp too); tests
 * import it from here. Call `stopAllSipp()` in afterEach/afterAll so a failed test never leaves a
 * SIPp running (the process-exit hook is the last resort).
 */
export {
  packageRoot,
  parseRtt,
  parseTrace,
  runSipp,
  scenarioPath,
  sippDir,
  startSipp,
  stopAllSipp,
  type RttSample,
  type SippOptions,
  type SippProcess,
  type SippResult,
  type SippTransport,
  type TracedMessage,
} from '../../src/dev/sipp.js';
