#!/usr/bin/env bash
# Syscalls and bytes per request: the bare pass-through against the gateway (auth and rate limit off, access log on
# to a file), each traced with strace while wrk sends a fixed load. Needs strace and wrk. Not a timing benchmark:
# strace slows everything down; only the counts per request mean something.
# Run: bash bench/syscalls.sh [seconds=5]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-5}"
# Measure the bundle users run, built first when it is not current (as every TypeScript benchmark does).
node --import tsx --input-type=module -e "(await import('./bench/harness.ts')).ensureCurrentBuild();"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_line() { for _ in $(seq 1 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "no '$2' in $1" >&2; exit 1; }

node --import tsx bench/backends.ts > "$work/backends.log" & pids+=($!)
wait_line "$work/backends.log" 'Backends Started'
ports="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/backends.log','utf8').split('\n')[0]).ports.join(','))")"

BACKEND_PORTS="$ports" node --import tsx bench/passthrough.ts > "$work/bare.log" & pids+=($!)
bare_pid=$!
wait_line "$work/bare.log" 'Gateway Started'
bare_port="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/bare.log','utf8').trim()).port)")"

upstreams="$(node -e "console.log('$ports'.split(',').map((p,i)=>'    - { name: b'+i+', address: 127.0.0.1, port: '+p+' }').join('\n'))")"
cat > "$work/gw.yaml" <<YAML
server: { listen_host: 127.0.0.1, listen_port: 0 }
admin: { enabled: false }
logging: { format: json, access_log: true }
load_balancing:
  upstreams:
$upstreams
  health_check: { enabled: false }
middleware: { auth: { enabled: false }, rate_limit: { enabled: false } }
YAML
PORTCULLIS_DATA_DIR="$work" node bin/portcullis.js start --config "$work/gw.yaml" > "$work/gw.log" & pids+=($!)
gw_pid=$!
wait_line "$work/gw.log" 'Gateway Started'
gw_port="$(node -e "const l=require('fs').readFileSync('$work/gw.log','utf8').split('\n').find(l=>l.includes('Gateway Started'));console.log(JSON.parse(l).port)")"

trace() { # name pid port
  local name=$1 pid=$2 port=$3
  wrk -t1 -c16 -d2s "http://127.0.0.1:$port/" > /dev/null # warm-up
  strace -f -qq -p "$pid" -o "$work/$name.strace" -e trace=all -e signal=none &
  local st=$!
  sleep 1
  local requests
  requests="$(wrk -t1 -c16 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')"
  sleep 0.5
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  node -e "
    const lines = require('fs').readFileSync('$work/$name.strace', 'utf8').split('\n');
    const calls = new Map(), bytes = new Map();
    for (const l of lines) {
      const m = /^\d+\s+([a-z_0-9]+)\((\d*).*\)\s+=\s+(-?\d+)/.exec(l);
      if (!m) continue;
      // Writes to stdout (fd 1: the log lines) apart from socket writes.
      if (m[1] === 'write' && m[2] === '1') m[1] = 'write(stdout)';
      m[2] = m[3];
      calls.set(m[1], (calls.get(m[1]) ?? 0) + 1);
      if (/^(read|write|write\\(stdout\\)|writev|readv|sendto|recvfrom|sendmsg|recvmsg|pwrite64|pread64)\$/.test(m[1]) && Number(m[2]) > 0)
        bytes.set(m[1], (bytes.get(m[1]) ?? 0) + Number(m[2]));
    }
    const n = $requests;
    let total = 0; for (const c of calls.values()) total += c;
    console.log('$name: ' + n + ' requests, ' + (total / n).toFixed(2) + ' syscalls per request');
    for (const [k, c] of [...calls].sort((a, b) => b[1] - a[1])) if (c / n >= 0.01)
      console.log('  ' + k.padEnd(16) + (c / n).toFixed(3).padStart(8) + ' /req' + (bytes.has(k) ? (bytes.get(k) / n).toFixed(0).padStart(8) + ' B/req' : ''));
  "
}
trace bare "$bare_pid" "$bare_port"
trace gateway "$gw_pid" "$gw_port"
