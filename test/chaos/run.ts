// `npm run chaos [-- SECONDS]`: the long chaos run (default 60 s); prints its figures and exits 1 on any violation.
import { runChaos } from './harness.js';

const seconds = Number(process.argv[2] ?? '60');
const report = await runChaos({ durationMs: seconds * 1000, faultEveryMs: 2_000, redisDownMs: 1_500 });
const problems = [
  ...(report.crashed ? [`gateway crashed: ${report.gatewayStderr}`] : []),
  ...report.unexpected,
  ...report.revokedAccepted,
  ...report.lostUsers.map((u) => `lost user ${u}`),
  ...report.policyViolations,
];
process.stdout.write(
  `chaos run: ${seconds} s, ${report.requests} requests, ${report.pgSessionsKilled} PostgreSQL sessions terminated, ` +
    `${report.redisKills} Redis kills\n`,
);
for (const [op, counts] of Object.entries(report.byOperation)) {
  process.stdout.write(`  ${op.padEnd(9)} ${Object.entries(counts).map(([status, n]) => `${status}: ${n}`).join(', ')}\n`);
}
process.stdout.write(problems.length === 0 ? 'no crash, no lost user, no accepted revoked token, outage policy as documented\n' : `${problems.length} problems:\n  ${problems.join('\n  ')}\n`);
process.exit(problems.length === 0 ? 0 : 1);
