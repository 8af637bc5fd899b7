// Portcullis admin dashboard: polls /api/status every 2 s and redraws the page. Every value goes in through
// textContent or an SVG attribute, never innerHTML, so names from the config cannot inject markup.
'use strict';

const REFRESH_MS = 2000;
/**
 * Longest wait for one /api/status answer. A fetch has no timeout of its own: an admin listener that stops answering
 * (a stalled process, a dropped link) left the page saying "live" over old numbers for as long as the socket stayed open.
 */
const STATUS_TIMEOUT_MS = 5000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART = { width: 600, height: 160, left: 44, right: 8, top: 10, bottom: 20 };

const AUTH_LABELS = {
  register: 'Registrations',
  login_success: 'Logins',
  login_failure: 'Failed logins',
  refresh: 'Token refreshes',
  reuse_detected: 'Refresh reuse detected',
  logout: 'Logouts',
};
const RATE_LIMIT_LABELS = { pass: 'Passed', reject: 'Rejected (429)', store_error: 'Store errors' };
const STORE_LABELS = { user_store: 'User store', redis: 'Redis' };
const USER_LABELS = { users: 'Users', disabled: 'Disabled', active_sessions: 'Active sessions', api_keys: 'API keys' };
/** Where the admin token is kept: sessionStorage, so it lives as long as the tab and never goes to disk for good. */
const TOKEN_KEY = 'portcullis-admin-token';
/**
 * What admin.token is: visible ASCII with no spaces. Anything else cannot be the token, and a character past U+00FF
 * cannot go in a header at all: fetch() throws, which the page read as the gateway being down ("disconnected", with
 * the form hidden for good once the tab was reloaded).
 */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;
const TOKEN_SHAPE_ERROR = 'a token is visible ASCII characters with no spaces';
/** Keys whose non-zero value is shown in red. */
const ALERTS = new Set(['reject', 'store_error', 'login_failure', 'reuse_detected', 'user_store', 'redis']);

function byId(id) {
  return document.getElementById(id);
}

function setText(id, text) {
  const el = byId(id);
  if (el.textContent !== text) el.textContent = text;
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Axis labels: short, no space ("0.5ms", "20ms", "1.5s"). */
function axisMs(ms) {
  if (ms === 0) return '0';
  if (ms < 10) return `${Math.round(ms * 10) / 10}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${Math.round(ms / 100) / 10}s`;
}

function formatRate(rate) {
  return rate < 10 ? rate.toFixed(2) : rate.toFixed(1);
}

function formatUptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function renderUpstreams(upstreams) {
  const body = byId('upstreams').tBodies[0];
  const rows = upstreams.map((u) => {
    const tr = document.createElement('tr');
    tr.dataset.upstream = u.address;
    cell(tr, u.name);
    cell(tr, u.address);
    const health = cell(tr, '');
    const pill = document.createElement('span');
    // The class comes from a fixed set; anything unexpected is shown as "unhealthy".
    const state = ['healthy', 'unhealthy', 'cooling_down'].includes(u.health) ? u.health : 'unhealthy';
    pill.className = `pill pill-${state}`;
    pill.textContent = String(u.health).replace('_', ' ');
    health.className = 'health';
    health.appendChild(pill);
    cell(tr, u.weight, 'num weight');
    cell(tr, u.in_flight, 'num inflight');
    cell(tr, u.requests, 'num requests');
    cell(tr, u.failures, 'num failures');
    cell(tr, u.service ?? '', 'service');
    return tr;
  });
  body.replaceChildren(...rows);
}

/**
 * Route counts of the previous refresh, to turn totals into per-second rates, and when it was made: the listener's
 * monotonic uptime_ms, not generated_at, a wall clock that NTP may step between two refreshes (a step back gave a
 * negative interval, held at 1 ms: rates a thousand times too high).
 */
let previousRoutes = { at: -1, counts: new Map() };

function renderRoutes(routes, uptimeMs) {
  const at = Number(uptimeMs);
  // A smaller uptime is another listener (the gateway restarted): no rate until the next refresh.
  const seconds = previousRoutes.at >= 0 && at > previousRoutes.at ? (at - previousRoutes.at) / 1000 : 0;
  const body = byId('routes').tBodies[0];
  const counts = new Map();
  const rows = (routes ?? []).map((r) => {
    const before = previousRoutes.counts.get(r.name);
    counts.set(r.name, { requests: r.requests, errors: r.errors });
    const rate = (now, then) => (seconds > 0 && then !== undefined ? formatRate(Math.max(now - then, 0) / seconds) : '–');
    const tr = document.createElement('tr');
    tr.dataset.route = r.name;
    cell(tr, r.name);
    cell(tr, (r.services ?? []).join(', '));
    cell(tr, r.auth ?? '');
    cell(tr, r.rate_limit ?? '');
    cell(tr, rate(r.requests, before?.requests), 'num rate');
    cell(tr, rate(r.errors, before?.errors), 'num error-rate');
    cell(tr, Number(r.requests).toLocaleString('en-US'), 'num requests');
    return tr;
  });
  previousRoutes = { at, counts };
  body.replaceChildren(...rows);
}

/** The listener certificates; the panel stays hidden without TLS. Under 14 days left is flagged. */
function renderCertificates(certificates) {
  const list = Array.isArray(certificates) ? certificates : [];
  byId('tls-panel').hidden = list.length === 0;
  const rows = list.map((c) => {
    const tr = document.createElement('tr');
    cell(tr, c.names.join(', '));
    cell(tr, c.cert_file);
    cell(tr, new Date(c.not_after).toISOString().slice(0, 10));
    const days = Math.floor(c.expires_in_s / 86400);
    cell(tr, days, days < 14 ? 'num expiring' : 'num');
    return tr;
  });
  byId('certificates').tBodies[0].replaceChildren(...rows);
}

/**
 * A panel of counts. `counts` null is "not known yet" (the user totals before the store's first count answered):
 * each value shows as a dash, never as a 0 an operator would read as a count.
 */
function renderPairs(id, counts, labels) {
  const list = byId(id);
  const items = [];
  for (const [key, label] of Object.entries(labels)) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    const value = counts === null ? 0 : Number(counts?.[key] ?? 0);
    dd.textContent = counts === null ? '–' : value.toLocaleString('en-US');
    dd.dataset.key = key;
    if (value > 0 && ALERTS.has(key)) dd.className = 'alert';
    items.push(dt, dd);
  }
  list.replaceChildren(...items);
}

function svg(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A "nice" axis maximum (1, 2, 5 × 10^n) at or above `value`. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

/** Draws one or more series (arrays of numbers or null) as lines, with a light grid and a y-axis scale. */
function drawChart(id, series, unit) {
  const el = byId(id);
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = niceMax(max);
  const n = Math.max(series[0]?.values.length ?? 0, 2);
  const x = (i) => left + (i / (n - 1)) * plotW;
  const y = (v) => top + plotH - (v / max) * plotH;
  const children = [];
  for (let g = 0; g <= 4; g++) {
    const value = (max * g) / 4;
    children.push(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }));
    const label = svg('text', { class: 'axis', x: left - 6, y: y(value) + 3, 'text-anchor': 'end' });
    label.textContent = unit === 'ms' ? axisMs(value) : String(Math.round(value * 100) / 100);
    children.push(label);
  }
  const minutesLabel = svg('text', { class: 'axis', x: left, y: height - 4 });
  minutesLabel.textContent = '−5 min';
  const nowLabel = svg('text', { class: 'axis', x: width - right, y: height - 4, 'text-anchor': 'end' });
  nowLabel.textContent = 'now';
  children.push(minutesLabel, nowLabel);
  for (const s of series) {
    // A gap (no requests in a step) breaks the latency line instead of drawing it down to zero; a point with no
    // neighbour on either side gets a dot, since a one-point path draws nothing.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      const alone = !pen && (s.values[i + 1] === null || s.values[i + 1] === undefined);
      if (alone) children.push(svg('circle', { class: `dot ${s.className}`, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
      pen = true;
    });
    if (s.area && d) {
      const first = s.values.findIndex((v) => v !== null);
      children.push(svg('path', { class: 'area', d: `${d}L${x(n - 1)},${y(0)}L${x(Math.max(first, 0))},${y(0)}Z` }));
    }
    if (d) children.push(svg('path', { class: `line ${s.className}`, d }));
  }
  el.replaceChildren(...children);
}

/** The Users panel: totals and recent admin actions (ids only: the page shows no emails). */
function renderUsers(identity) {
  const panel = byId('users-panel');
  if (!identity) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  renderPairs('users-totals', identity.totals ?? null, USER_LABELS);
  const rows = (identity.recent_actions ?? []).map((a) => {
    const row = document.createElement('tr');
    row.dataset.action = a.action;
    cell(row, new Date(a.at).toLocaleTimeString());
    cell(row, a.actor);
    cell(row, a.action);
    cell(row, a.target_id);
    return row;
  });
  byId('admin-actions').tBodies[0].replaceChildren(...rows);
}

function render(status) {
  const t = status.traffic;
  setText('rate', formatRate(t.rate));
  setText('requests', t.requests.toLocaleString('en-US'));
  setText('p50', formatMs(t.p50_ms));
  setText('p99', formatMs(t.p99_ms));
  setText('errors', t.errors.toLocaleString('en-US'));
  setText('live', `${status.in_flight} · ${status.connections}`);
  setText('uptime', formatUptime(status.uptime_s));
  setText('updated', new Date(status.generated_at).toLocaleTimeString());
  renderUpstreams(status.upstreams);
  renderRoutes(status.routes, status.uptime_ms);
  renderCertificates(status.tls_certificates);
  renderPairs('ratelimit', status.rate_limit, RATE_LIMIT_LABELS);
  renderPairs('auth', status.auth, AUTH_LABELS);
  renderPairs('stores', status.store_errors, STORE_LABELS);
  renderUsers(status.identity);
  drawChart('chart-rate', [{ values: t.series.map((p) => p.rate), className: 'rate', area: true }], 'rps');
  drawChart(
    'chart-latency',
    [
      { values: t.series.map((p) => p.p50_ms), className: 'p50' },
      { values: t.series.map((p) => p.p99_ms), className: 'p99' },
    ],
    'ms',
  );
}

function setConnection(ok) {
  const el = byId('conn');
  el.className = `pill ${ok ? 'pill-live' : 'pill-down'}`;
  el.textContent = ok ? 'live' : 'disconnected';
}

/**
 * Shows the token form (asked once: the token is then kept in sessionStorage for this tab), with `error` under it
 * when there is one.
 */
function askForToken(error) {
  const form = byId('token-form');
  form.hidden = false;
  const message = byId('token-error');
  message.hidden = !error;
  if (error) message.textContent = error;
  const el = byId('conn');
  el.className = 'pill pill-wait';
  el.textContent = 'token required';
}

let timer;

async function refresh() {
  clearTimeout(timer);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && !TOKEN_SHAPE.test(token)) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken(TOKEN_SHAPE_ERROR);
    return;
  }
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const res = await fetch('/api/status', { cache: 'no-store', headers, signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    if (res.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      askForToken(token ? 'wrong token' : undefined);
      return; // no polling until a token is entered
    }
    if (!res.ok) throw new Error(`status ${res.status}`);
    byId('token-form').hidden = true;
    render(await res.json());
    setConnection(true);
  } catch {
    setConnection(false);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

byId('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId('token-input');
  const value = input.value.trim();
  if (!value) return;
  if (!TOKEN_SHAPE.test(value)) {
    input.value = '';
    askForToken(TOKEN_SHAPE_ERROR);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  input.value = '';
  refresh();
});

refresh();
