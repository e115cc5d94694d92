/**
 * The Node flags the edge runs with in production, as deploy/systemd/credit-edge.service and the
 * Dockerfile start it (test/unit/deploy.test.ts holds the three together), so the benchmark
 * measures what production runs. `--min-semi-space-size=16`: V8's young generation starts at
 * 16 MB per semi-space instead of 1 MB (V8 grows it only when many objects survive, and an edge's
 * garbage is short-lived: the messages of a call). Fewer scavenges, and fewer per-call objects
 * copied and promoted to the old generation while their call is in progress; ~13 MB more RSS.
 * Node accepts it on the command line only (not in NODE_OPTIONS).
 */
export const EDGE_NODE_FLAGS = ['--min-semi-space-size=16'];
