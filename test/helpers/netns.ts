// A spawned gateway in a network namespace of its own (unshare -n; the tests run as root), where a test can make
// the host's network what it needs without touching the machine's: here, loopback without IPv6, so that connecting
// to [::1] fails with EADDRNOTAVAIL as on a host or container with IPv6 disabled. Requests reach it from inside that
// namespace (nsenter + curl).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startProcess, writeConfig, type ConfigInput, type GatewayProcess, type ProcessOptions } from './gateway.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Starts `portcullis start` in a new network namespace whose loopback has 127.0.0.1 and no IPv6 address. */
export function spawnGatewayWithoutIpv6(input: ConfigInput, options: ProcessOptions = {}): Promise<GatewayProcess> {
  const configFile = writeConfig(input);
  const script =
    'ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 && exec "$0" "$1" start --config "$2"';
  const args = ['-n', 'sh', '-c', script, process.execPath, join(ROOT, 'bin/portcullis.js'), configFile];
  return startProcess('unshare', args, configFile, options);
}

/** GET `url` from inside the network namespace of process `pid`: the status and body. */
export function getInNamespaceOf(pid: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const args = [`--net=/proc/${pid}/ns/net`, 'curl', '-s', '--max-time', '10', '-w', '\n%{http_code}', url];
    execFile('nsenter', args, (err, stdout) => {
      if (err) return reject(err);
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}
