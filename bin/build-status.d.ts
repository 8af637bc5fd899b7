// Types of build-status.js, for the benchmarks (TypeScript) that import it.
export type Build = 'bundle' | 'dist' | 'source';
export function buildToRun(root: URL): Build;
export function entryPoint(root: URL, build?: Build): URL;
