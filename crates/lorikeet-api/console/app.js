// Lorikeet web console: a hash-routed single page app over /api/v1.
// Every piece of API data reaches the page through DOM text nodes or attributes
// (the h() helper below), never through innerHTML, so stored names cannot inject markup.
'use strict';
(() => {
  const API = '/api/v1';
  const TENANT_KEY = 'lorikeet.tenantId';
  // The gateway list has no online flag; a gateway that reported within this window
  // counts as online (forwarders send stats every 30 s by default).
  const OFFLINE_AFTER_MS = 3 * 60 * 1000;
  const REGIONS = ['EU868', 'US915', 'AU915', 'AS923', 'AS923-2', 'AS923-3', 'AS923-4', 'CN470', 'IN865', 'KR920', 'RU864', 'EU433'];
  const MAC_VERSIONS = ['1.0.0', '1.0.1', '1.0.2', '1.0.3', '1.0.4', '1.1.0'];
  const REG_PARAMS = ['RP001-1.0.2', 'RP001-1.0.2revB', 'RP001-1.0.3revA', 'RP001-1.1revA', 'RP001-1.1revB',
    'RP002-1.0.0', 'RP002-1.0.1', 'RP002-1.0.2', 'RP002-1.0.3', 'RP002-1.0.4'];
  const ROLES = [['', '— no access —'], ['viewer', 'viewer'], ['device_manager', 'device manager'], ['admin', 'admin']];
  const EVENT_TYPES = ['up', 'join', 'ack', 'txack', 'log', 'status', 'location', 'alert'];
  const RULE_KINDS = {
    // Starting points to edit; docs/alerts.md lists every parameter.
    device_silent: { minutes: 60 },
    gateway_offline: { minutes: 10 },
    battery_below: { percent: 20, hysteresis: 5 },
    field: { expression: 'object.temperature > 30', clearAfter: 2 },
    integration_failing: { backlogAbove: 1000, minutes: 15 },
  };
  const JS_TEMPLATE = `function decodeUplink(input) {
  // input.bytes: array of 0..255, input.fPort: number
  return { data: { bytes: input.bytes.length } };
}
`;

  const state = { me: null, tenants: [], tenantId: null, cleanups: [], cache: {} };
  const $ = (sel) => document.querySelector(sel);

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, kids);
    if (attrs && attrs.value != null) setValue(el, String(attrs.value));
    return el;
  }

  // Sets the value and the default value too, so form.reset() returns to it.
  // A select needs its options before its value, hence after append().
  function setValue(el, v) {
    if (el.tagName === 'SELECT') {
      for (const o of el.options) if (o.value === v) o.setAttribute('selected', '');
    } else if (el.tagName === 'INPUT') {
      el.setAttribute('value', v);
    }
    el.value = v;
  }

  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(el, attrs);
    return append(el, kids);
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false || k === 'value') continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'test') el.setAttribute('data-test', v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.append(k instanceof Node ? k : String(k)); // strings become text nodes
    }
    return el;
  }

  const muted = (text) => h('p', { class: 'muted' }, text);
  const notAvailable = () => h('p', { class: 'muted', test: 'not-available' }, 'not available on this server yet');
  const code = (text) => (text ? h('code', {}, text) : '—');
  const link = (href, text) => h('a', { href }, text);
  const panel = (title, ...kids) => h('section', { class: 'panel' }, title ? h('h2', {}, title) : null, kids);
  const dl = (pairs) => h('dl', { class: 'props' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
  const yesNo = (b) => (b ? 'yes' : 'no');
  const json = (v) => h('pre', { class: 'json' }, JSON.stringify(v, null, 2));

  function field(label, control, hint) {
    return h('label', { class: control.tagName === 'TEXTAREA' ? 'field wide' : 'field' },
      h('span', {}, label), control, hint ? h('small', {}, hint) : null);
  }
  const input = (name, attrs = {}) => h('input', { name, type: 'text', ...attrs });
  function select(name, options, value, attrs = {}) {
    return h('select', { name, value: value ?? undefined, ...attrs },
      options.map((o) => (Array.isArray(o) ? h('option', { value: o[0] }, o[1]) : h('option', { value: o }, o))));
  }
  function checkbox(name, label, checked) {
    return h('label', { class: 'check' }, h('input', { type: 'checkbox', name, checked: !!checked }), ' ', label);
  }

  // A form whose submit runs an async action; a failure lands in the error banner.
  // novalidate: the server's messages name the field and the fix, so we let them through.
  function form(test, submitLabel, kids, action) {
    const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
    const f = h('form', { class: 'form', test, novalidate: true }, kids, h('div', { class: 'actions' }, button));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      button.disabled = true;
      try {
        await action(f.elements, f);
      } catch (err) {
        report(err);
      } finally {
        button.disabled = false;
      }
    });
    return f;
  }

  // Deleting needs a second click within five seconds instead of a native confirm()
  // dialog, which browser automation dismisses by default.
  function dangerButton(label, test, action) {
    let timer = null;
    const b = h('button', { type: 'button', class: 'danger', test }, label);
    const disarm = () => { clearTimeout(timer); timer = null; b.textContent = label; delete b.dataset.armed; };
    b.addEventListener('click', async () => {
      if (!timer) {
        b.textContent = 'Click again to confirm';
        b.dataset.armed = 'true';
        timer = setTimeout(disarm, 5000);
        return;
      }
      disarm();
      b.disabled = true;
      try { await action(); } catch (err) { report(err); } finally { b.disabled = false; }
    });
    return b;
  }

  function table(test, columns, rows, empty = 'Nothing here yet.') {
    const body = h('tbody', {}, rows.length
      ? rows.map((r) => h('tr', {}, columns.map((c) => h('td', {}, c.cell(r) ?? '—'))))
      : h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
    return h('div', { class: 'table-wrap' },
      h('table', { test }, h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.label)))), body));
  }

  // A paged table over a list endpoint: load(offset, limit) answers {items, nextOffset}.
  function pagedTable(test, columns, load, { limit = 50, filter } = {}) {
    let offset = 0;
    let next = null;
    const holder = h('div', {}, muted('Loading…'));
    const prev = h('button', { type: 'button', test: 'prev-page', disabled: true }, '← Previous');
    const nextBtn = h('button', { type: 'button', test: 'next-page', disabled: true }, 'Next →');
    const info = h('span', { class: 'muted' });
    const el = h('div', {}, holder, h('div', { class: 'pager' }, prev, info, nextBtn));
    async function reload() {
      try {
        const page = await load(offset, limit);
        next = page.nextOffset ?? null;
        const items = filter ? page.items.filter(filter) : page.items;
        holder.replaceChildren(table(test, columns, items));
        info.textContent = page.items.length ? `${offset + 1}–${offset + page.items.length}` : '';
        prev.disabled = offset === 0;
        nextBtn.disabled = next == null;
      } catch (err) {
        holder.replaceChildren(muted('Could not load this list.'));
        report(err, el);
      }
    }
    prev.addEventListener('click', () => { offset = Math.max(0, offset - limit); reload(); });
    nextBtn.addEventListener('click', () => { if (next != null) { offset = next; reload(); } });
    el.reload = (fromStart) => { if (fromStart) offset = 0; return reload(); };
    reload();
    return el;
  }

  // Fill a box from an async builder; errors go to the banner unless the page is gone.
  async function fill(box, build) {
    box.replaceChildren(muted('Loading…'));
    try {
      box.replaceChildren(...[await build()].flat().filter(Boolean));
    } catch (err) {
      box.replaceChildren(muted('Could not load.'));
      report(err, box);
    }
  }

  // ---------------------------------------------------------------- formatting

  function fmtTime(t) {
    if (!t) return '—';
    const d = new Date(t);
    return Number.isNaN(+d) ? String(t) : d.toLocaleString();
  }
  function ago(t) {
    if (!t) return 'never';
    const s = Math.round((Date.now() - new Date(t)) / 1000);
    if (s < 60) return `${Math.max(s, 0)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  const timeEl = (t) => (t ? h('time', { datetime: t, title: fmtTime(t) }, ago(t)) : 'never');
  const isOnline = (lastSeenAt) => !!lastSeenAt && Date.now() - new Date(lastSeenAt) < OFFLINE_AFTER_MS;
  const onlineBadge = (on) => h('span', { class: on ? 'badge ok' : 'badge off' }, on ? 'online' : 'offline');

  function hexToB64(hex) {
    const clean = hex.replace(/[\s:]/g, '');
    if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error('data: expected hex bytes, e.g. 01 02 0a');
    let bin = '';
    for (let i = 0; i < clean.length; i += 2) bin += String.fromCharCode(parseInt(clean.slice(i, i + 2), 16));
    return btoa(bin);
  }
  function b64ToHex(b64) {
    try {
      return Array.from(atob(b64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
    } catch {
      return b64;
    }
  }
  function parseJson(text, what) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${what}: not valid JSON (${e.message})`);
    }
  }
  // "key=value" per line, for tags; "Name: value" per line, for headers.
  function parsePairs(text, sep) {
    const out = {};
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const i = line.indexOf(sep);
      if (i < 1) throw new Error(`"${line.trim()}": expected name${sep}value`);
      out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    return out;
  }
  const pairsText = (obj, sep) => Object.entries(obj || {}).map(([k, v]) => `${k}${sep}${v}`).join('\n');
  const intOr = (v, dflt) => (String(v).trim() === '' ? dflt : Number(v));
  const qs = (params) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== '') p.set(k, v);
    const s = p.toString();
    return s ? `?${s}` : '';
  };
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      opts.headers['X-CSRF-Token'] = state.me ? state.me.csrfToken : '';
      opts.headers['Content-Type'] = 'application/json';
      if (body !== undefined) opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (e) {
      throw new ApiError(0, `cannot reach the server (${e.message})`);
    }
    if (res.status === 401) {
      location.assign('/login');
      throw new ApiError(401, 'signed out');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: use the status line */ }
    if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
    if (method !== 'GET') clearError(); // a successful change clears the last error
    return data;
  }

  // For endpoints the server may not have yet: null on 404.
  async function maybe(path) {
    try {
      return await api('GET', path);
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  const tenantQs = (extra = {}) => qs({ tenantId: state.tenantId, ...extra });

  // Applications and profiles of the current tenant, for selects and name lookups.
  function lookups() {
    if (state.cache.tenantId !== state.tenantId || !state.cache.lookups) {
      const p = Promise.all([
        api('GET', `/applications${tenantQs({ limit: 1000 })}`),
        api('GET', `/device-profiles${tenantQs({ limit: 1000 })}`),
      ]).then(([a, p]) => ({
        apps: a.items,
        profiles: p.items,
        appName: (id) => (a.items.find((x) => x.id === id) || {}).name || id,
        profileName: (id) => (p.items.find((x) => x.id === id) || {}).name || id,
      }));
      p.catch(() => { state.cache = {}; });
      state.cache = { tenantId: state.tenantId, lookups: p };
    }
    return state.cache.lookups;
  }
  const invalidate = () => { state.cache = {}; };

  // ---------------------------------------------------------------- banners

  let noticeTimer = null;
  function showError(msg) {
    const el = $('[data-test="error"]');
    el.textContent = msg;
    el.hidden = false;
  }
  function clearError() {
    const el = $('[data-test="error"]');
    el.textContent = '';
    el.hidden = true;
  }
  function notify(msg) {
    const el = $('[data-test="notice"]');
    el.textContent = msg;
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }
  // `owner` is the element that asked; when it left the page (route changed) we stay quiet.
  function report(err, owner) {
    if (err && err.status === 401) return;
    if (owner && !owner.isConnected) return;
    showError(err && err.message ? err.message : String(err));
  }

  // ---------------------------------------------------------------- roles

  function roleIn(tenantId) {
    if (state.me.isAdmin) return 'admin';
    const r = (state.me.roles || []).find((x) => x.tenantId === tenantId);
    return r ? r.role : null;
  }
  const canManage = () => roleIn(state.tenantId) === 'admin';
  const canDevices = () => ['admin', 'device_manager'].includes(roleIn(state.tenantId));
  const readOnlyNote = (what) => h('p', { class: 'muted readonly' }, `Your role in this tenant cannot change ${what}.`);
  const tenantName = (id) => (state.tenants.find((t) => t.id === id) || {}).name || id;

  // ---------------------------------------------------------------- charts

  // A small inline SVG chart. series: [{name, points: [{t: Date|string, v: number|null}]}].
  // kind 'bar' draws one series as evenly spaced bars (per-minute counts).
  function chart(series, { kind = 'line', unit = '' } = {}) {
    const all = series.flatMap((s) => s.points).filter((p) => p.v != null && Number.isFinite(+p.v));
    if (!all.length) return muted('No data in this period.');
    const W = 560, H = 180, L = 46, R = 10, T = 10, B = 24;
    const ts = all.map((p) => +new Date(p.t));
    let t0 = Math.min(...ts), t1 = Math.max(...ts);
    if (t0 === t1) { t0 -= 60000; t1 += 60000; }
    let v0 = Math.min(...all.map((p) => +p.v)), v1 = Math.max(...all.map((p) => +p.v));
    if (kind === 'bar') v0 = Math.min(0, v0);
    if (v0 === v1) { v0 -= 1; v1 += 1; }
    const x = (t) => L + ((+new Date(t) - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + ((v1 - v) / (v1 - v0)) * (H - T - B);
    const num = (v) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10) + unit;
    // Over a day, a bare clock time would be ambiguous: add the date.
    const tickFmt = t1 - t0 > 20 * 3600e3 ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' } : { hour: '2-digit', minute: '2-digit' };
    const tick = (t) => new Date(t).toLocaleString([], tickFmt);

    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': series.map((s) => s.name).join(', ') });
    for (const v of [v0, (v0 + v1) / 2, v1]) {
      root.append(
        svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }),
        svg('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, num(v)));
    }
    root.append(
      svg('text', { x: L, y: H - 6, class: 'axis' }, tick(t0)),
      svg('text', { x: W - R, y: H - 6, class: 'axis', 'text-anchor': 'end' }, tick(t1)));

    series.forEach((s, i) => {
      const cls = `s${i % 4}`;
      if (kind === 'bar') {
        const n = s.points.length, step = (W - L - R) / n, bw = Math.max(1, step - 1);
        s.points.forEach((p, j) => {
          const v = +p.v || 0;
          root.append(svg('rect', { x: L + j * step, y: y(Math.max(v, 0)), width: bw, height: Math.abs(y(v) - y(0)), class: `bar ${cls}` },
            svg('title', {}, `${fmtTime(p.t)}: ${v}${unit}`)));
        });
        return;
      }
      let d = '', pen = 'M';
      for (const p of s.points) {
        if (p.v == null) { pen = 'M'; continue; } // gap in the data: lift the pen
        d += `${pen}${x(p.t).toFixed(1)} ${y(+p.v).toFixed(1)} `;
        pen = 'L';
      }
      root.append(svg('path', { d, class: `line ${cls}` }));
      if (s.points.length <= 120) {
        for (const p of s.points) {
          if (p.v == null) continue;
          root.append(svg('circle', { cx: x(p.t), cy: y(+p.v), r: 2.5, class: `dot ${cls}` },
            svg('title', {}, `${s.name} ${fmtTime(p.t)}: ${p.v}${unit}`)));
        }
      }
    });
    return h('figure', { class: 'chart-box' }, root,
      h('figcaption', { class: 'legend' }, series.map((s, i) => h('span', { class: `key s${i % 4}` }, s.name))));
  }

  function rangeSelect(onChange) {
    const s = select('range', [['3600', 'last hour'], ['86400', 'last 24 hours'], ['604800', 'last 7 days']], '86400');
    s.addEventListener('change', onChange);
    return s;
  }
  const rangeQs = (sel) => {
    const to = new Date();
    return qs({ from: new Date(to - Number(sel.value) * 1000).toISOString(), to: to.toISOString() });
  };

  // ---------------------------------------------------------------- events

  // The few fields worth a column, per event type (payloads are ChirpStack v4 events).
  function summarize(type, p) {
    const r = { fCnt: '', fPort: '', data: '', detail: '' };
    switch (type) {
      case 'up': {
        r.fCnt = p.fCnt;
        r.fPort = p.fPort;
        r.data = p.data ? b64ToHex(p.data) : '';
        const rx = p.rxInfo || [];
        const best = rx.slice().sort((a, b) => (b.rssi ?? -999) - (a.rssi ?? -999))[0];
        r.detail = [
          p.object ? JSON.stringify(p.object) : '',
          best ? `RSSI ${best.rssi} dBm, SNR ${best.snr} dB, ${rx.length} gw` : '',
          p.dr != null ? `DR${p.dr}` : '',
        ].filter(Boolean).join(' · ');
        break;
      }
      case 'join': r.detail = `DevAddr ${p.devAddr || '?'}`; break;
      case 'ack': r.fCnt = p.fCntDown; r.detail = p.acknowledged ? 'acknowledged' : 'not acknowledged'; break;
      case 'txack': r.fCnt = p.fCntDown; r.detail = `sent via ${p.gatewayId || '?'}`; break;
      case 'status':
        r.detail = [p.externalPowerSource ? 'external power' : p.batteryLevelUnavailable ? 'battery unknown'
          : `battery ${p.batteryLevel}%`, p.margin != null ? `margin ${p.margin} dB` : ''].filter(Boolean).join(' · ');
        break;
      case 'log': r.detail = `${p.level || ''} ${p.code || ''}: ${p.description || ''}`; break;
      case 'location': r.detail = p.location ? `${p.location.latitude}, ${p.location.longitude}` : ''; break;
      default: r.detail = JSON.stringify(p);
    }
    return r;
  }

  function eventRow(type, time, payload, withJson) {
    const s = summarize(type, payload || {});
    return h('tr', { test: 'event-row', 'data-type': type },
      h('td', {}, fmtTime(time)),
      h('td', {}, h('span', { class: `badge ev-${type}` }, type)),
      h('td', {}, s.fCnt ?? ''), h('td', {}, s.fPort ?? ''),
      h('td', {}, s.data ? h('code', {}, s.data) : ''),
      h('td', { class: 'detail' }, s.detail,
        withJson ? h('details', {}, h('summary', {}, 'JSON'), json(payload)) : null));
  }
  const eventHead = () => h('thead', {}, h('tr', {}, ['Time', 'Type', 'FCnt', 'FPort', 'Data (hex)', 'Details'].map((c) => h('th', {}, c))));

  function eventsTable(test, items) {
    return h('div', { class: 'table-wrap' }, h('table', { test }, eventHead(),
      h('tbody', {}, items.length ? items.map((e) => eventRow(e.type, e.time, e.payload, true))
        : h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'No stored events.')))));
  }

  // ---------------------------------------------------------------- pages: overview

  async function pageOverview(view) {
    const box = h('div', { test: 'overview', class: 'overview' }, muted('Loading…'));
    view.append(h('h1', {}, 'Overview'), box);
    const load = () => fill(box, async () => {
      const o = await maybe(`/overview${tenantQs()}`);
      if (!o) return panel(null, notAvailable());
      const stat = (label, value, test, cls) => h('div', { class: `stat ${cls || ''}`, test }, h('strong', {}, value ?? '—'), h('span', {}, label));
      return [
        h('div', { class: 'stats' },
          stat('devices', o.devices, 'stat-devices'),
          stat('gateways online', o.gateways && o.gateways.online, 'stat-gateways-online', 'ok'),
          stat('gateways offline', o.gateways && o.gateways.offline, 'stat-gateways-offline', o.gateways && o.gateways.offline ? 'warn' : ''),
          stat('events awaiting delivery', o.deliveryBacklog, 'stat-backlog', o.deliveryBacklog ? 'warn' : '')),
        panel('Uplinks per minute', chart([{ name: 'uplinks', points: (o.uplinksPerMinute || []).map((p) => ({ t: p.t, v: p.n })) }], { kind: 'bar' })),
      ];
    });
    await load();
    if (!box.isConnected) return;
    const timer = setInterval(() => { if (box.isConnected) load(); }, 30000);
    state.cleanups.push(() => clearInterval(timer));
  }

  // ---------------------------------------------------------------- pages: tenants

  async function pageTenants(view) {
    const admin = state.me.isAdmin;
    const list = pagedTable('tenants-table', [
      { label: 'Name', cell: (t) => link(`#/tenants/${enc(t.id)}`, t.name) },
      { label: 'ID', cell: (t) => code(t.id) },
      { label: 'Private gateways', cell: (t) => yesNo(t.privateGateways) },
      { label: 'Your role', cell: (t) => roleIn(t.id) || '—' },
      { label: 'Created', cell: (t) => fmtTime(t.createdAt) },
    ], (offset, limit) => (admin ? api('GET', `/tenants${qs({ limit, offset })}`)
      : Promise.resolve({ items: state.tenants, nextOffset: null }))); // a user's own tenants, loaded at start
    view.append(h('h1', {}, 'Tenants'), panel(null, list));
    if (!admin) return;
    view.append(panel('New tenant', form('create-tenant-form', 'Create tenant', [
      field('Name', input('name', { required: true })),
      checkbox('privateGateways', 'New gateways private by default'),
    ], async (el, f) => {
      await api('POST', '/tenants', { name: el.name.value, privateGateways: el.privateGateways.checked });
      f.reset();
      notify('Tenant created.');
      await loadTenants();
      await list.reload();
    })));
  }

  async function pageTenant(view, id) {
    const t = await api('GET', `/tenants/${enc(id)}`);
    view.append(h('p', { class: 'crumbs' }, link('#/tenants', 'Tenants'), ' / '), h('h1', {}, t.name),
      panel('Details', dl([['ID', code(t.id)], ['Private gateways by default', yesNo(t.privateGateways)],
        ['Created', fmtTime(t.createdAt)], ['Updated', fmtTime(t.updatedAt)]])));
    if (state.me.isAdmin) {
      view.append(panel('Edit', form('edit-tenant-form', 'Save', [
        field('Name', input('name', { value: t.name })),
        checkbox('privateGateways', 'New gateways private by default', t.privateGateways),
      ], async (el) => {
        await api('PUT', `/tenants/${enc(id)}`, { name: el.name.value, privateGateways: el.privateGateways.checked });
        notify('Tenant saved.');
        await loadTenants();
        render();
      }), h('div', { class: 'actions' }, dangerButton('Delete tenant', 'delete-tenant', async () => {
        await api('DELETE', `/tenants/${enc(id)}`);
        await loadTenants();
        location.hash = '#/tenants';
      }))));
    }
    if (roleIn(id) !== 'admin') return;

    // API keys: tenant-scoped bearer tokens for machines; the token is shown once.
    const keysBox = h('div');
    const tokenBox = h('div');
    const loadKeys = () => fill(keysBox, async () => {
      const page = await api('GET', `/api-keys${qs({ tenantId: id, limit: 1000 })}`);
      return table('api-keys-table', [
        { label: 'Name', cell: (k) => k.name },
        { label: 'ID', cell: (k) => code(k.id) },
        { label: 'Created', cell: (k) => fmtTime(k.createdAt) },
        { label: '', cell: (k) => dangerButton('Revoke', 'revoke-api-key', async () => { await api('DELETE', `/api-keys/${enc(k.id)}`); notify('Key revoked.'); loadKeys(); }) },
      ], page.items);
    });
    view.append(panel('API keys', keysBox, tokenBox, form('create-api-key-form', 'Create API key', [
      field('Name', input('name')),
    ], async (el, f) => {
      const k = await api('POST', '/api-keys', { name: el.name.value, tenantId: id });
      f.reset();
      tokenBox.replaceChildren(h('div', { class: 'banner banner-ok' }, 'Copy this token now; it is not shown again: ',
        h('code', { test: 'api-key-token' }, k.token)));
      loadKeys();
    })));
    loadKeys();
  }

  // ---------------------------------------------------------------- pages: users

  const roleSummary = (roles) => (roles || []).map((r) => `${tenantName(r.tenantId)}: ${r.role}`).join(', ') || '—';

  // Administrators manage every user; a tenant administrator the selected tenant's.
  const managesUsers = () => state.me.isAdmin || canManage();
  const administered = () => state.tenants.filter((t) => state.me.isAdmin || roleIn(t.id) === 'admin');

  async function pageUsers(view) {
    view.append(h('h1', {}, 'Users'));
    if (!managesUsers()) { view.append(muted('Only administrators and tenant administrators manage users.')); return; }
    const admin = state.me.isAdmin;
    const list = pagedTable('users-table', [
      { label: 'Email', cell: (u) => link(`#/users/${enc(u.id)}`, u.email) },
      { label: 'Administrator', cell: (u) => yesNo(u.isAdmin) },
      { label: 'Roles', cell: (u) => roleSummary(u.roles) },
      { label: 'Created', cell: (u) => fmtTime(u.createdAt) },
    ], (offset, limit) => api('GET', `/users${qs(admin ? { limit, offset } : { tenantId: state.tenantId, limit, offset })}`));
    view.append(panel(null, list), panel('New user', form('create-user-form', 'Create user', [
      field('Email', input('email', { type: 'email', autocomplete: 'off' })),
      field('Password', input('password', { type: 'password', autocomplete: 'new-password' })),
      field(`Role in ${state.tenantId ? tenantName(state.tenantId) : 'the selected tenant'}`, select('role', admin ? ROLES : ROLES.filter((r) => r[0]), admin ? '' : 'viewer')),
      admin ? checkbox('isAdmin', 'Administrator (every tenant, users)') : null,
    ].filter(Boolean), async (el, f) => {
      const roles = el.role.value && state.tenantId ? [{ tenantId: state.tenantId, role: el.role.value }] : [];
      await api('POST', '/users', { email: el.email.value, password: el.password.value, isAdmin: admin && el.isAdmin.checked, roles });
      f.reset();
      notify('User created.');
      await list.reload();
    })));
  }

  async function pageUser(view, id) {
    view.append(h('p', { class: 'crumbs' }, link('#/users', 'Users'), ' / '));
    if (!managesUsers()) { view.append(muted('Only administrators and tenant administrators manage users.')); return; }
    const admin = state.me.isAdmin;
    const u = await api('GET', `/users/${enc(id)}`);
    view.append(h('h1', {}, u.email), panel('Details', dl([['ID', code(u.id)], ['Administrator', yesNo(u.isAdmin)],
      ['Roles', roleSummary(u.roles)], ['Created', fmtTime(u.createdAt)], ['Updated', fmtTime(u.updatedAt)]])));

    if (admin) view.append(panel('Edit', form('edit-user-form', 'Save', [
      field('Email', input('email', { type: 'email', value: u.email })),
      field('New password', input('password', { type: 'password', autocomplete: 'new-password' }), 'leave empty to keep the current one'),
      checkbox('isAdmin', 'Administrator', u.isAdmin),
    ], async (el) => {
      const body = { email: el.email.value, isAdmin: el.isAdmin.checked };
      if (el.password.value) body.password = el.password.value;
      await api('PUT', `/users/${enc(id)}`, body);
      notify('User saved.');
      render();
    })));

    // One select per tenant; the PUT replaces the role list (a tenant administrator's:
    // the roles in the tenants they administer; the server keeps the others).
    const known = new Set(state.tenants.map((t) => t.id));
    const tenants = admin
      ? [...state.tenants, ...(u.roles || []).filter((r) => !known.has(r.tenantId)).map((r) => ({ id: r.tenantId, name: r.tenantId }))]
      : administered();
    const current = (tid) => ((u.roles || []).find((r) => r.tenantId === tid) || {}).role || '';
    view.append(panel('Roles per tenant', form('roles-form', 'Save roles',
      h('div', { class: 'wide' }, table('roles-table', [
        { label: 'Tenant', cell: (t) => t.name },
        { label: 'Role', cell: (t) => select(`role-${t.id}`, ROLES, current(t.id), { 'data-tenant-id': t.id, 'aria-label': `Role in ${t.name}` }) },
      ], tenants)),
      async (el, f) => {
        const roles = [...f.querySelectorAll('select[data-tenant-id]')].filter((s) => s.value)
          .map((s) => ({ tenantId: s.dataset.tenantId, role: s.value }));
        await api('PUT', `/users/${enc(id)}/roles`, roles);
        notify('Roles saved.');
        render();
      })));

    if (admin) view.append(panel('Danger zone', dangerButton('Delete user', 'delete-user', async () => {
      await api('DELETE', `/users/${enc(id)}`);
      location.hash = '#/users';
    })));
  }

  // ---------------------------------------------------------------- pages: applications

  async function pageApplications(view) {
    const list = pagedTable('applications-table', [
      { label: 'Name', cell: (a) => link(`#/applications/${enc(a.id)}`, a.name) },
      { label: 'Description', cell: (a) => a.description },
      { label: 'ID', cell: (a) => code(a.id) },
      { label: 'Created', cell: (a) => fmtTime(a.createdAt) },
    ], (offset, limit) => api('GET', `/applications${tenantQs({ limit, offset })}`));
    view.append(h('h1', {}, 'Applications'), panel(null, list));
    if (!canManage()) { view.append(readOnlyNote('applications')); return; }
    view.append(panel('New application', form('create-application-form', 'Create application', [
      field('Name', input('name')),
      field('Description', input('description')),
    ], async (el, f) => {
      await api('POST', '/applications', { name: el.name.value, description: el.description.value, tenantId: state.tenantId });
      f.reset();
      invalidate();
      notify('Application created.');
      await list.reload();
    })));
  }

  async function pageApplication(view, id) {
    const a = await api('GET', `/applications/${enc(id)}`);
    const manage = canManage();
    view.append(h('p', { class: 'crumbs' }, link('#/applications', 'Applications'), ' / '), h('h1', {}, a.name),
      panel('Details', dl([['ID', code(a.id)], ['Description', a.description || '—'], ['Tenant', tenantName(a.tenantId)],
        ['Created', fmtTime(a.createdAt)], ['Updated', fmtTime(a.updatedAt)]]),
      manage ? h('details', {}, h('summary', {}, 'Edit'), form('edit-application-form', 'Save', [
        field('Name', input('name', { value: a.name })),
        field('Description', input('description', { value: a.description || '' })),
      ], async (el) => {
        await api('PUT', `/applications/${enc(id)}`, { name: el.name.value, description: el.description.value });
        invalidate();
        notify('Application saved.');
        render();
      }), h('div', { class: 'actions' }, dangerButton('Delete application and its devices', 'delete-application', async () => {
        await api('DELETE', `/applications/${enc(id)}`);
        invalidate();
        location.hash = '#/applications';
      }))) : null));

    const integ = h('div');
    view.append(panel('HTTP integration (webhook)', integ));
    integrationPanel(integ, id, manage);

    const lk = await lookups();
    view.append(panel('Devices', pagedTable('application-devices-table', [
      { label: 'DevEUI', cell: (d) => link(`#/devices/${enc(d.devEui)}`, d.devEui) },
      { label: 'Name', cell: (d) => d.name },
      { label: 'Profile', cell: (d) => lk.profileName(d.deviceProfileId) },
      { label: 'Last seen', cell: (d) => timeEl(d.lastSeenAt) },
    ], (offset, limit) => api('GET', `/devices${tenantQs({ applicationId: id, limit, offset })}`)),
    canDevices() ? h('p', {}, link('#/devices', 'Add a device on the Devices page')) : null));
  }

  function integrationPanel(box, appId, manage) {
    const path = `/applications/${enc(appId)}/integrations/http`;
    const reload = () => integrationPanel(box, appId, manage);
    return fill(box, async () => {
      let cur = null;
      try { cur = await api('GET', path); } catch (err) { if (err.status !== 404) throw err; } // 404: none configured
      const status = cur ? dl([
        ['URL', code(cur.url)],
        ['Set by', cur.owner],
        ['Signing secret', cur.signingSecretSet ? 'set' : 'none'],
        ['Last delivered', fmtTime(cur.lastDeliveredAt)],
        ['Last error', cur.lastError ? h('span', { class: 'err-text' }, cur.lastError, cur.lastErrorAt ? ` (${fmtTime(cur.lastErrorAt)})` : '') : 'none'],
        ['Backlog', `${cur.backlog ?? 0} event(s) waiting`],
      ]) : muted('No webhook is configured for this application.');
      const out = [h('div', { test: 'integration-state' }, status)];
      if (!manage) return out;
      out.push(form('integration-form', cur ? 'Save webhook' : 'Add webhook', [
        field('URL', input('url', { type: 'url', value: cur ? cur.url : '', placeholder: 'https://example.com/lorikeet' }), 'events are POSTed to <url>?event=<type>'),
        field('Signing secret', input('signingSecret', { type: 'password', autocomplete: 'off', placeholder: cur && cur.signingSecretSet ? 'set; leave empty to keep it' : 'none' }), 'write-only; signs X-Lorikeet-Signature'),
        cur && cur.signingSecretSet ? checkbox('removeSigningSecret', 'Remove the signing secret') : null,
        field('Headers', h('textarea', { name: 'headers', rows: 3, placeholder: 'Authorization: Bearer …' }, pairsText(cur && cur.headers, ': ')),
          'one "Name: value" per line; **** keeps a stored value (only while the host stays the same)'),
      ], async (el) => {
        const body = { url: el.url.value, headers: parsePairs(el.headers.value, ':') };
        if (el.signingSecret.value) body.signingSecret = el.signingSecret.value;
        else if (el.removeSigningSecret && el.removeSigningSecret.checked) body.signingSecret = '';
        await api('POST', path, body);
        notify('Webhook saved.');
        reload();
      }));
      if (cur) {
        out.push(h('div', { class: 'actions' }, dangerButton('Remove webhook', 'delete-integration', async () => {
          await api('DELETE', path);
          notify('Webhook removed.');
          reload();
        })));
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- pages: device profiles

  function profileFields(p) {
    const codec = (p && p.payloadCodec) || { type: 'none' };
    const script = h('textarea', { name: 'script', rows: 12, spellcheck: 'false', class: 'code' }, codec.script || '');
    const scriptField = field('Codec script (JavaScript)', script, 'decodeUplink(input) / encodeDownlink(input), as in ChirpStack v4');
    const type = select('payloadCodec', [['none', 'none'], ['cayenne_lpp', 'Cayenne LPP'], ['javascript', 'JavaScript']], codec.type);
    const sync = () => {
      scriptField.hidden = type.value !== 'javascript';
      if (type.value === 'javascript' && !script.value.trim()) script.value = JS_TEMPLATE;
    };
    type.addEventListener('change', sync);
    sync();
    const num = (name, v, attrs) => input(name, { type: 'number', value: v ?? '', ...attrs });
    return [
      field('Name', input('name', { value: p ? p.name : '' })),
      field('Description', input('description', { value: p ? p.description || '' : '' })),
      field('Region', select('region', REGIONS, p ? p.region : 'EU868')),
      field('LoRaWAN version', select('macVersion', MAC_VERSIONS, p ? p.macVersion : '1.0.3')),
      field('Regional parameters', select('regParamsRevision', REG_PARAMS, p ? p.regParamsRevision : 'RP002-1.0.3')),
      field('RX1 delay (s)', num('rx1Delay', p ? p.rx1Delay : 1, { min: 0, max: 15 })),
      field('RX1 DR offset', num('rx1DrOffset', p ? p.rx1DrOffset : 0, { min: 0, max: 7 })),
      field('RX2 DR', num('rx2Dr', p ? p.rx2Dr : '', { min: 0, max: 15, placeholder: 'region default' })),
      field('RX2 frequency (Hz)', num('rx2FrequencyHz', p ? p.rx2FrequencyHz : '', { placeholder: 'region default' })),
      h('div', { class: 'checks' },
        checkbox('supportsOtaa', 'OTAA', p ? p.supportsOtaa : true),
        checkbox('supportsClassC', 'Class C', p ? p.supportsClassC : false),
        checkbox('adrEnabled', 'ADR', p ? p.adrEnabled : true)),
      field('Payload codec', type),
      scriptField,
      field('MAC settings (JSON)', h('textarea', { name: 'macSettings', rows: 3, class: 'code', placeholder: '{}' },
        p && p.macSettings && Object.keys(p.macSettings).length ? JSON.stringify(p.macSettings, null, 2) : ''),
      'optional; e.g. {"adrMaxDr": 5}'),
    ];
  }

  function readProfile(el) {
    const body = {
      name: el.name.value,
      description: el.description.value,
      region: el.region.value,
      macVersion: el.macVersion.value,
      regParamsRevision: el.regParamsRevision.value,
      supportsOtaa: el.supportsOtaa.checked,
      supportsClassC: el.supportsClassC.checked,
      adrEnabled: el.adrEnabled.checked,
      rx1Delay: intOr(el.rx1Delay.value, 1),
      rx1DrOffset: intOr(el.rx1DrOffset.value, 0),
      rx2Dr: intOr(el.rx2Dr.value, null),
      rx2FrequencyHz: intOr(el.rx2FrequencyHz.value, null),
      payloadCodec: { type: el.payloadCodec.value },
    };
    if (body.payloadCodec.type === 'javascript') body.payloadCodec.script = el.script.value;
    if (el.macSettings.value.trim()) body.macSettings = parseJson(el.macSettings.value, 'macSettings');
    return body;
  }

  async function pageProfiles(view) {
    const list = pagedTable('profiles-table', [
      { label: 'Name', cell: (p) => link(`#/profiles/${enc(p.id)}`, p.name) },
      { label: 'Region', cell: (p) => p.region },
      { label: 'LoRaWAN', cell: (p) => p.macVersion },
      { label: 'Codec', cell: (p) => (p.payloadCodec || {}).type },
      { label: 'ID', cell: (p) => code(p.id) },
    ], (offset, limit) => api('GET', `/device-profiles${tenantQs({ limit, offset })}`));
    view.append(h('h1', {}, 'Device profiles'), panel(null, list));
    if (!canManage()) { view.append(readOnlyNote('device profiles')); return; }
    view.append(panel('New device profile', form('create-profile-form', 'Create profile', profileFields(null), async (el, f) => {
      await api('POST', '/device-profiles', { ...readProfile(el), tenantId: state.tenantId });
      f.reset();
      f.elements.payloadCodec.dispatchEvent(new Event('change'));
      invalidate();
      notify('Device profile created.');
      await list.reload();
    })));
  }

  async function pageProfile(view, id) {
    const p = await api('GET', `/device-profiles/${enc(id)}`);
    const manage = canManage();
    view.append(h('p', { class: 'crumbs' }, link('#/profiles', 'Device profiles'), ' / '), h('h1', {}, p.name));
    if (manage) {
      view.append(panel('Settings and codec', form('edit-profile-form', 'Save profile', profileFields(p), async (el) => {
        await api('PUT', `/device-profiles/${enc(id)}`, { ...readProfile(el), tenantId: p.tenantId });
        invalidate();
        notify('Device profile saved.');
      }), h('div', { class: 'actions' }, dangerButton('Delete profile', 'delete-profile', async () => {
        await api('DELETE', `/device-profiles/${enc(id)}`);
        invalidate();
        location.hash = '#/profiles';
      }))));
    } else {
      view.append(panel('Settings', json(p)), readOnlyNote('device profiles'));
    }

    const result = h('div', { test: 'decode-result', class: 'decode-result', 'aria-live': 'polite' });
    view.append(panel('Test decode', muted('Runs the saved codec of this profile on the bytes: save your edits first.'),
      form('test-decode-form', 'Test decode', [
        field('FPort', input('fPort', { type: 'number', min: 1, max: 223, value: 1 })),
        field('Bytes (hex)', input('bytes', { placeholder: '01 67 00 ca', class: 'code' })),
      ], async (el) => {
        result.replaceChildren(muted('Decoding…'));
        try {
          const r = await api('POST', `/device-profiles/${enc(id)}/test-decode`,
            { fPort: intOr(el.fPort.value, 1), bytes: el.bytes.value.replace(/[\s:]/g, '').toLowerCase() });
          result.replaceChildren(h('h3', {}, 'Object'), json(r.object),
            (r.warnings || []).length ? [h('h3', {}, 'Warnings'), h('ul', { class: 'warnings' }, r.warnings.map((w) => h('li', {}, String(w))))] : null);
        } catch (err) {
          if (err.status === 404) { result.replaceChildren(notAvailable()); return; }
          result.replaceChildren(h('p', { class: 'err-text' }, err.message));
          throw err;
        }
      }), result));
  }

  // ---------------------------------------------------------------- pages: devices

  function deviceFields(d, lk, creating) {
    return [
      creating ? field('DevEUI', input('devEui', { placeholder: '16 hex digits', class: 'code' })) : null,
      field('JoinEUI', input('joinEui', { value: d ? d.joinEui : '', placeholder: '16 hex digits', class: 'code' })),
      field('Name', input('name', { value: d ? d.name : '' })),
      field('Description', input('description', { value: d ? d.description || '' : '' })),
      field('Application', select('applicationId', lk.apps.map((a) => [a.id, a.name]), d ? d.applicationId : null)),
      field('Device profile', select('deviceProfileId', lk.profiles.map((p) => [p.id, p.name]), d ? d.deviceProfileId : null)),
      field('Tags', h('textarea', { name: 'tags', rows: 2, placeholder: 'site=north' }, pairsText(d && d.tags, '=')), 'one key=value per line'),
      h('div', { class: 'checks' },
        checkbox('skipFcntCheck', 'Skip frame-counter check', d && d.skipFcntCheck),
        checkbox('disabled', 'Disabled', d && d.disabled)),
    ];
  }
  const readDevice = (el) => ({
    joinEui: el.joinEui.value.trim(),
    name: el.name.value,
    description: el.description.value,
    applicationId: el.applicationId.value,
    deviceProfileId: el.deviceProfileId.value,
    tags: parsePairs(el.tags.value, '='),
    skipFcntCheck: el.skipFcntCheck.checked,
    disabled: el.disabled.checked,
  });

  async function pageDevices(view) {
    const lk = await lookups();
    const search = input('search', { type: 'search', test: 'device-search', placeholder: 'Name or DevEUI', 'aria-label': 'Search devices' });
    const term = () => search.value.trim().toLowerCase();
    const list = pagedTable('devices-table', [
      { label: 'DevEUI', cell: (d) => link(`#/devices/${enc(d.devEui)}`, d.devEui) },
      { label: 'Name', cell: (d) => d.name },
      { label: 'Application', cell: (d) => link(`#/applications/${enc(d.applicationId)}`, lk.appName(d.applicationId)) },
      { label: 'Profile', cell: (d) => lk.profileName(d.deviceProfileId) },
      { label: 'State', cell: (d) => (d.disabled ? h('span', { class: 'badge off' }, 'disabled') : 'enabled') },
      { label: 'Last seen', cell: (d) => timeEl(d.lastSeenAt) },
    ], (offset, limit) => api('GET', `/devices${tenantQs({ search: search.value.trim(), limit, offset })}`), {
      // The server may or may not filter by ?search=; filtering the page here too is harmless.
      filter: (d) => !term() || (d.name || '').toLowerCase().includes(term()) || d.devEui.toLowerCase().includes(term()),
    });
    let debounce = null;
    search.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => list.reload(true), 300); });
    view.append(h('h1', {}, 'Devices'), panel(null, h('div', { class: 'toolbar' }, search), list));

    if (!canDevices()) { view.append(readOnlyNote('devices')); return; }
    const missing = !lk.apps.length || !lk.profiles.length;
    view.append(panel('New device',
      missing ? h('p', { class: 'muted' }, 'A device needs an ', link('#/applications', 'application'), ' and a ', link('#/profiles', 'device profile'), ' first.') : null,
      form('create-device-form', 'Create device', deviceFields(null, lk, true), async (el, f) => {
        await api('POST', '/devices', { devEui: el.devEui.value.trim(), ...readDevice(el), tenantId: state.tenantId });
        f.reset();
        notify('Device created.');
        search.value = '';
        await list.reload(true);
      })));
  }

  async function pageDevice(view, devEui) {
    const base = `/devices/${enc(devEui)}`;
    const [d, lk] = await Promise.all([api('GET', base), lookups()]);
    if (!view.isConnected) return; // navigated away meanwhile: open no stream
    const dm = canDevices();
    view.append(h('p', { class: 'crumbs' }, link('#/devices', 'Devices'), ' / '), h('h1', {}, d.name, ' ', h('small', {}, code(d.devEui))));

    const grid = h('div', { class: 'grid' });
    view.append(grid);
    grid.append(panel('Details', dl([
      ['DevEUI', code(d.devEui)], ['JoinEUI', code(d.joinEui)],
      ['Application', link(`#/applications/${enc(d.applicationId)}`, lk.appName(d.applicationId))],
      ['Profile', link(`#/profiles/${enc(d.deviceProfileId)}`, lk.profileName(d.deviceProfileId))],
      ['Class', d.deviceClassEnabled], ['Disabled', yesNo(d.disabled)], ['Last seen', timeEl(d.lastSeenAt)],
      ['Tags', pairsText(d.tags, '=') || '—'], ['Description', d.description || '—'], ['Created', fmtTime(d.createdAt)],
    ]), dm ? h('details', {}, h('summary', {}, 'Edit'), form('edit-device-form', 'Save device', deviceFields(d, lk, false), async (el) => {
      await api('PUT', base, { devEui: d.devEui, ...readDevice(el) });
      notify('Device saved.');
      render();
    }), h('div', { class: 'actions' }, dangerButton('Delete device', 'delete-device', async () => {
      await api('DELETE', base);
      location.hash = '#/devices';
    }))) : null));

    // Link metrics (new endpoint; 404 until the server has it).
    const linkBox = h('div');
    const range = rangeSelect(() => loadLink());
    const loadLink = () => fill(linkBox, async () => {
      const m = await maybe(`${base}/link${rangeQs(range)}`);
      if (!m) return notAvailable();
      const b = m.battery;
      const hist = m.history || [];
      return [dl([
        ['Last seen', timeEl(m.lastSeenAt)], ['FCnt up', m.fCntUp], ['NFCnt down', m.nFCntDown],
        ['Data rate', m.dr != null ? `DR${m.dr}` : null], ['TX power', m.txPowerIndex != null ? `index ${m.txPowerIndex}` : null],
        ['Battery', h('span', { test: 'battery' }, !b ? 'unknown' : `${b.percent == null ? 'external power / unknown' : `${b.percent}%`}${b.margin != null ? `, margin ${b.margin} dB` : ''}`)],
      ]),
      h('h3', {}, 'RSSI (dBm)'), chart([{ name: 'RSSI', points: hist.map((p) => ({ t: p.t, v: p.rssi })) }], { unit: '' }),
      h('h3', {}, 'SNR (dB)'), chart([{ name: 'SNR', points: hist.map((p) => ({ t: p.t, v: p.snr })) }])];
    });
    grid.append(panel('Link', h('div', { class: 'toolbar' }, range), linkBox));
    loadLink();

    // Root keys: the API answers them masked; a set key reads as asterisks.
    const keysBox = h('div');
    const loadKeys = () => fill(keysBox, async () => {
      let k = null;
      try { k = await api('GET', `${base}/keys`); } catch (err) { if (err.status !== 404) throw err; }
      return dl([['AppKey', code(k && k.appKey)], ['NwkKey', code(k && k.nwkKey)]]);
    });
    grid.append(panel('OTAA root keys', keysBox, dm ? form('set-keys-form', 'Set keys', [
      field('AppKey', input('appKey', { class: 'code', placeholder: '32 hex digits', autocomplete: 'off' })),
      field('NwkKey', input('nwkKey', { class: 'code', placeholder: 'LoRaWAN 1.1 only', autocomplete: 'off' })),
    ], async (el, f) => {
      const body = { appKey: el.appKey.value.trim() };
      if (el.nwkKey.value.trim()) body.nwkKey = el.nwkKey.value.trim();
      await api('PUT', `${base}/keys`, body);
      f.reset();
      notify('Keys set.');
      loadKeys();
    }) : null));
    loadKeys();

    // Session (after an OTAA join or an ABP activation).
    const actBox = h('div');
    const loadAct = () => fill(actBox, async () => {
      let a = null;
      try { a = await api('GET', `${base}/activation`); } catch (err) { if (err.status !== 404) throw err; }
      if (!a) return muted('No session: the device has not joined and is not activated.');
      return dl(Object.entries(a).map(([k, v]) => [k, typeof v === 'string' ? code(v) : String(v)]));
    });
    const hexField = (name, label) => field(label, input(name, { class: 'code', autocomplete: 'off' }));
    grid.append(panel('Session', actBox, dm ? h('details', {}, h('summary', {}, 'ABP activation'),
      form('activate-form', 'Activate', [
        hexField('devAddr', 'DevAddr'), hexField('appSKey', 'AppSKey'),
        hexField('nwkSKey', 'NwkSKey (1.0.x)'), hexField('nwkSEncKey', 'NwkSEncKey (1.1)'),
        hexField('sNwkSIntKey', 'SNwkSIntKey (1.1)'), hexField('fNwkSIntKey', 'FNwkSIntKey (1.1)'),
        field('FCnt up', input('fCntUp', { type: 'number', min: 0 })),
        field('NFCnt down', input('nFCntDown', { type: 'number', min: 0 })),
        field('AFCnt down', input('aFCntDown', { type: 'number', min: 0 })),
      ], async (el, f) => {
        const body = {};
        for (const n of ['devAddr', 'appSKey', 'nwkSKey', 'nwkSEncKey', 'sNwkSIntKey', 'fNwkSIntKey']) if (el[n].value.trim()) body[n] = el[n].value.trim();
        for (const n of ['fCntUp', 'nFCntDown', 'aFCntDown']) if (el[n].value !== '') body[n] = Number(el[n].value);
        await api('POST', `${base}/activate`, body);
        f.reset();
        notify('Device activated.');
        loadAct();
      })) : null));
    loadAct();

    // Downlink queue.
    const queueBox = h('div');
    const loadQueue = () => fill(queueBox, async () => {
      const q = await api('GET', `${base}/queue`);
      return table('queue-table', [
        { label: 'FPort', cell: (i) => i.fPort },
        { label: 'Data (hex)', cell: (i) => (i.data ? code(b64ToHex(i.data)) : '') },
        { label: 'Object', cell: (i) => (i.object ? JSON.stringify(i.object) : '') },
        { label: 'Confirmed', cell: (i) => yesNo(i.confirmed) },
        { label: 'State', cell: (i) => (i.pending ? 'sent, awaiting ACK' : i.sentAt ? `sent ${fmtTime(i.sentAt)}` : 'queued') },
        { label: 'FCnt down', cell: (i) => i.fCntDown },
        { label: 'Queued', cell: (i) => fmtTime(i.createdAt) },
      ], q.items, 'The queue is empty.');
    });
    grid.append(panel('Downlink queue', queueBox, dm ? [
      form('enqueue-form', 'Enqueue', [
        field('FPort', input('fPort', { type: 'number', min: 1, max: 223, value: 1 })),
        field('Data (hex)', input('data', { class: 'code', placeholder: '01 02 0a' }), 'or give an object below'),
        field('Object (JSON)', h('textarea', { name: 'object', rows: 2, class: 'code', placeholder: '{"digitalOutput": {"3": 1}}' }), "encoded by the profile's codec"),
        checkbox('confirmed', 'Confirmed'),
      ], async (el, f) => {
        const body = { fPort: intOr(el.fPort.value, 1), confirmed: el.confirmed.checked };
        const hex = el.data.value.trim(), obj = el.object.value.trim();
        if (hex && obj) throw new Error('give either hex data or a JSON object, not both');
        if (obj) body.object = parseJson(obj, 'object');
        else body.data = hexToB64(hex);
        await api('POST', `${base}/queue`, body);
        f.reset();
        notify('Downlink queued.');
        loadQueue();
      }),
      h('div', { class: 'actions' }, h('button', { type: 'button', test: 'flush-queue', onclick: async (e) => {
        e.target.disabled = true;
        try { await api('DELETE', `${base}/queue`); notify('Queue flushed.'); loadQueue(); } catch (err) { report(err); } finally { e.target.disabled = false; }
      } }, 'Flush queue')),
    ] : null));
    loadQueue();

    view.append(panel('Live frames', liveFrames(devEui, loadQueue)));

    const eventsBox = h('div');
    const loadEvents = () => fill(eventsBox, async () => eventsTable('device-events-table', (await api('GET', `${base}/events?limit=25`)).items));
    view.append(panel('Recent events', h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: loadEvents }, 'Refresh')), eventsBox));
    loadEvents();
  }

  // Live frames over SSE. The cookie authenticates the stream (same origin).
  function liveFrames(devEui, onDownlinkChange) {
    const rows = h('tbody', { test: 'live-frames' });
    const status = h('span', { class: 'badge', test: 'live-status' }, 'connecting…');
    const es = new EventSource(`${API}/devices/${enc(devEui)}/events/stream`);
    state.cleanups.push(() => es.close());
    const add = (tr) => {
      rows.prepend(tr);
      while (rows.rows.length > 200) rows.lastElementChild.remove();
    };
    const parse = (ev) => { try { return JSON.parse(ev.data); } catch { return {}; } };
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (ev) => {
        const p = parse(ev);
        add(eventRow(type, p.time || new Date().toISOString(), p, true));
        if (type === 'ack' || type === 'txack') onDownlinkChange();
      });
    }
    es.addEventListener('lagged', (ev) => {
      add(h('tr', { class: 'note' }, h('td', { colspan: 6 }, `Fell behind: ${parse(ev).missed ?? 'some'} frame(s) skipped.`)));
    });
    es.addEventListener('unauthorized', (ev) => {
      es.close();
      status.textContent = `ended: ${parse(ev).reason || 'no longer authorised'}`;
      status.className = 'badge off';
    });
    es.onopen = () => { status.textContent = 'live'; status.className = 'badge ok'; };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        status.textContent = 'closed';
        status.className = 'badge off';
        maybe('/me').catch(() => {}); // an expired session redirects to /login
      } else {
        status.textContent = 'reconnecting…';
        status.className = 'badge';
      }
    };
    return [
      h('div', { class: 'toolbar' }, status, h('button', { type: 'button', onclick: () => rows.replaceChildren() }, 'Clear')),
      h('div', { class: 'table-wrap' }, h('table', { class: 'frames' }, eventHead(), rows)),
      muted('Newest first; frames appear as the network server handles them.'),
    ];
  }

  // ---------------------------------------------------------------- pages: gateways

  const readLocation = (el) => {
    const lat = el.latitude.value.trim(), lon = el.longitude.value.trim();
    if (!lat && !lon) return undefined;
    return { latitude: Number(lat), longitude: Number(lon), altitude: intOr(el.altitude.value, 0) };
  };
  const locationFields = (loc) => [
    field('Latitude', input('latitude', { type: 'number', step: 'any', value: loc ? loc.latitude : '' })),
    field('Longitude', input('longitude', { type: 'number', step: 'any', value: loc ? loc.longitude : '' })),
    field('Altitude (m)', input('altitude', { type: 'number', step: 'any', value: loc ? loc.altitude : '' })),
  ];
  const locationText = (loc) => (loc ? [`${loc.latitude}, ${loc.longitude}`, loc.altitude != null ? ` (${loc.altitude} m) ` : ' ',
    h('a', { href: `https://www.openstreetmap.org/?mlat=${enc(loc.latitude)}&mlon=${enc(loc.longitude)}#map=16/${enc(loc.latitude)}/${enc(loc.longitude)}`, target: '_blank', rel: 'noopener noreferrer' }, 'map')] : '—');

  async function pageGateways(view) {
    const list = pagedTable('gateways-table', [
      { label: 'Gateway ID', cell: (g) => link(`#/gateways/${enc(g.gatewayId)}`, g.gatewayId) },
      { label: 'Name', cell: (g) => g.name },
      { label: 'State', cell: (g) => onlineBadge(isOnline(g.lastSeenAt)) },
      { label: 'Last seen', cell: (g) => timeEl(g.lastSeenAt) },
      { label: 'Location', cell: (g) => (g.location ? `${g.location.latitude}, ${g.location.longitude}` : '—') },
      { label: 'Private', cell: (g) => yesNo(g.private) },
    ], (offset, limit) => api('GET', `/gateways${tenantQs({ limit, offset })}`));
    view.append(h('h1', {}, 'Gateways'), panel(null, list));
    if (!canManage()) { view.append(readOnlyNote('gateways')); return; }
    view.append(panel('New gateway', form('create-gateway-form', 'Create gateway', [
      field('Gateway ID', input('gatewayId', { class: 'code', placeholder: '16 hex digits' })),
      field('Name', input('name')),
      field('Description', input('description')),
      ...locationFields(null),
      checkbox('private', 'Private (hidden from other tenants)'),
    ], async (el, f) => {
      const body = { gatewayId: el.gatewayId.value.trim(), name: el.name.value, description: el.description.value, tenantId: state.tenantId, location: readLocation(el) };
      if (el.private.checked) body.private = true; // unchecked: the tenant's default applies
      await api('POST', '/gateways', body);
      f.reset();
      notify('Gateway created.');
      await list.reload();
    })));
  }

  async function pageGateway(view, id) {
    const base = `/gateways/${enc(id)}`;
    const g = await api('GET', base);
    const manage = canManage();
    const stateBox = h('span', {}, onlineBadge(isOnline(g.lastSeenAt)));
    const locBox = h('span', {}, locationText(g.location));
    view.append(h('p', { class: 'crumbs' }, link('#/gateways', 'Gateways'), ' / '), h('h1', {}, g.name, ' ', h('small', {}, code(g.gatewayId))));
    const grid = h('div', { class: 'grid' });
    view.append(grid);
    grid.append(panel('Details', dl([
      ['State', stateBox], ['Last seen', timeEl(g.lastSeenAt)], ['Location', locBox], ['Location source', g.locationSource],
      ['Private', yesNo(g.private)], ['Description', g.description || '—'], ['Created', fmtTime(g.createdAt)],
    ]), g.stats ? h('details', {}, h('summary', {}, "Forwarder's last stats"), json(g.stats)) : null,
    manage ? h('details', {}, h('summary', {}, 'Edit'), form('edit-gateway-form', 'Save gateway', [
      field('Name', input('name', { value: g.name })),
      field('Description', input('description', { value: g.description || '' })),
      ...locationFields(g.location),
      field('Location source', select('locationSource', [['provisioned', 'provisioned (this form)'], ['reported', "reported (the forwarder's GPS)"]], g.locationSource)),
      checkbox('private', 'Private (hidden from other tenants)', g.private),
    ], async (el) => {
      await api('PUT', base, { name: el.name.value, description: el.description.value, location: readLocation(el),
        locationSource: el.locationSource.value, private: el.private.checked });
      notify('Gateway saved.');
      render();
    }), h('div', { class: 'actions' }, dangerButton('Delete gateway', 'delete-gateway', async () => {
      await api('DELETE', base);
      location.hash = '#/gateways';
    }))) : null));

    const statsBox = h('div');
    const range = rangeSelect(() => loadStats());
    const loadStats = () => fill(statsBox, async () => {
      const s = await maybe(`${base}/stats${rangeQs(range)}`);
      if (!s) return notAvailable();
      stateBox.replaceChildren(onlineBadge(!!s.online));
      if (s.location) locBox.replaceChildren(...[locationText(s.location)].flat());
      const iv = s.intervals || [];
      return chart([
        { name: 'uplinks', points: iv.map((i) => ({ t: i.t, v: i.uplinks })) },
        { name: 'downlinks', points: iv.map((i) => ({ t: i.t, v: i.downlinks })) },
        { name: 'TX ack errors', points: iv.map((i) => ({ t: i.t, v: i.txAckErrors })) },
      ]);
    });
    grid.append(panel('Traffic', h('div', { class: 'toolbar' }, range), statsBox));
    loadStats();
  }

  // ---------------------------------------------------------------- pages: event log

  let lastEventDevice = '';
  async function pageEvents(view) {
    view.append(h('h1', {}, 'Event log'));
    const page = await api('GET', `/devices${tenantQs({ limit: 1000 })}`);
    if (!page.items.length) { view.append(panel(null, muted('No devices in this tenant yet.'))); return; }
    const out = h('div');
    const devices = page.items.map((d) => [d.devEui, `${d.name} (${d.devEui})`]);
    if (!page.items.some((d) => d.devEui === lastEventDevice)) lastEventDevice = page.items[0].devEui;
    const load = (el) => {
      lastEventDevice = el.devEui.value;
      return fill(out, async () => {
        const r = await api('GET', `/devices/${enc(el.devEui.value)}/events${qs({ limit: intOr(el.limit.value, 50) })}`);
        return [h('p', {}, link(`#/devices/${enc(el.devEui.value)}`, 'Open the device page')), eventsTable('events-table', r.items)];
      });
    };
    const f = form('event-log-form', 'Show events', [
      field('Device', select('devEui', devices, lastEventDevice)),
      field('How many', input('limit', { type: 'number', min: 1, max: 1000, value: 50 })),
    ], (el) => load(el));
    f.elements.devEui.addEventListener('change', () => load(f.elements));
    view.append(panel(null, f, out));
    load(f.elements);
  }

  // ---------------------------------------------------------------- pages: alerts

  async function pageAlerts(view) {
    view.append(h('h1', {}, 'Alerts'));
    const firing = h('div', { test: 'alerts-firing' });
    const resolved = h('div', { test: 'alerts-resolved' });
    const subject = (a) => {
      if (a.subjectType === 'device') return link(`#/devices/${enc(a.subject)}`, a.subject);
      if (a.subjectType === 'gateway') return link(`#/gateways/${enc(a.subject)}`, a.subject);
      return a.subject;
    };
    const alertCols = (withResolved) => [
      { label: 'Subject', cell: subject },
      { label: 'Rule', cell: (a) => a.ruleName },
      { label: 'Kind', cell: (a) => a.kind },
      { label: 'Message', cell: (a) => (withResolved && a.resolveMessage ? `${a.message} — ${a.resolveMessage}` : a.message) },
      { label: 'Fired', cell: (a) => fmtTime(a.firedAt) },
      withResolved ? { label: 'Resolved', cell: (a) => fmtTime(a.resolvedAt) } : null,
    ].filter(Boolean);
    const build = async (st) => {
      const r = await maybe(`/alerts${tenantQs({ state: st, limit: 100 })}`);
      if (!r) return notAvailable();
      return table(`alerts-${st}-table`, alertCols(st === 'resolved'), r.items, st === 'firing' ? 'Nothing is firing.' : 'No resolved alerts.');
    };
    view.append(panel('Firing', firing), panel('Resolved', resolved));
    await Promise.all([fill(firing, () => build('firing')), fill(resolved, () => build('resolved'))]);
    // Alerts come and go by themselves: refresh quietly (no "Loading…" flash).
    const refresh = async () => {
      for (const [box, st] of [[firing, 'firing'], [resolved, 'resolved']]) {
        try { box.replaceChildren(await build(st)); } catch (_) { /* the next round tries again */ }
      }
    };
    const timer = setInterval(() => { if (firing.isConnected) refresh(); }, 3000);
    state.cleanups.push(() => clearInterval(timer));

    const lk = await lookups();
    const rulesBox = h('div');
    const manage = canManage();
    const loadRules = () => fill(rulesBox, async () => {
      const r = await maybe(`/alert-rules${tenantQs({ limit: 1000 })}`);
      if (!r) return notAvailable();
      return table('alert-rules-table', [
        { label: 'Name', cell: (x) => x.name },
        { label: 'Kind', cell: (x) => x.kind },
        { label: 'Application', cell: (x) => (x.applicationId ? lk.appName(x.applicationId) : 'all') },
        { label: 'Parameters', cell: (x) => code(JSON.stringify(x.params || {})) },
        manage ? { label: '', cell: (x) => dangerButton('Delete', 'delete-alert-rule', async () => {
          await api('DELETE', `/alert-rules/${enc(x.id)}`);
          notify('Rule deleted.');
          loadRules();
        }) } : null,
      ].filter(Boolean), r.items, 'No rules yet.');
    });
    view.append(panel('Rules', rulesBox));
    loadRules();
    if (!manage) { view.append(readOnlyNote('alert rules')); return; }

    const params = h('textarea', { name: 'params', rows: 4, class: 'code' }, JSON.stringify(RULE_KINDS.device_silent, null, 2));
    const kind = select('kind', Object.keys(RULE_KINDS), 'device_silent');
    kind.addEventListener('change', () => { params.value = JSON.stringify(RULE_KINDS[kind.value], null, 2); });
    view.append(panel('New alert rule', form('create-alert-rule-form', 'Create rule', [
      field('Name', input('name')),
      field('Kind', kind),
      field('Application', select('applicationId', [['', 'all applications'], ...lk.apps.map((a) => [a.id, a.name])], '')),
      field('Parameters (JSON)', params, 'depends on the kind: minutes or seconds of silence; percent; expression such as object.temperature > 30 (docs/alerts.md)'),
    ], async (el, f) => {
      const body = { name: el.name.value, tenantId: state.tenantId, kind: el.kind.value, params: parseJson(el.params.value || '{}', 'params') };
      if (el.applicationId.value) body.applicationId = el.applicationId.value;
      await api('POST', '/alert-rules', body);
      f.reset();
      kind.dispatchEvent(new Event('change'));
      notify('Alert rule created.');
      loadRules();
    })));
  }

  // ---------------------------------------------------------------- pages: account

  async function pageAccount(view) {
    const me = state.me;
    view.append(h('h1', {}, 'Account'), panel('You', dl([
      ['Email', me.email], ['Administrator', yesNo(me.isAdmin)], ['Roles', roleSummary(me.roles)],
    ])), panel('Change password', form('change-password-form', 'Change password', [
      field('Current password', input('currentPassword', { type: 'password', autocomplete: 'current-password' })),
      field('New password', input('newPassword', { type: 'password', autocomplete: 'new-password' })),
      field('New password again', input('confirmPassword', { type: 'password', autocomplete: 'new-password' })),
    ], async (el, f) => {
      if (el.newPassword.value !== el.confirmPassword.value) throw new Error('the two new passwords differ');
      await api('PUT', '/me/password', { currentPassword: el.currentPassword.value, newPassword: el.newPassword.value });
      f.reset();
      notify('Password changed.');
    })), panel('Session', h('button', { type: 'button', test: 'account-logout', onclick: logout }, 'Sign out')));
  }

  // ---------------------------------------------------------------- shell

  const ROUTES = {
    overview: [pageOverview],
    tenants: [pageTenants, pageTenant],
    users: [pageUsers, pageUser],
    applications: [pageApplications, pageApplication],
    profiles: [pageProfiles, pageProfile],
    devices: [pageDevices, pageDevice],
    gateways: [pageGateways, pageGateway],
    events: [pageEvents],
    alerts: [pageAlerts],
    account: [pageAccount],
  };

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
    return { name: parts[0] || 'overview', id: parts[1] ? decodeURIComponent(parts[1]) : null };
  }

  function render() {
    const { name, id } = parseRoute();
    const pages = ROUTES[name];
    if (!pages || (id && !pages[1])) { location.replace('#/overview'); return; }
    for (const fn of state.cleanups.splice(0)) fn();
    clearError();
    for (const a of document.querySelectorAll('.sidenav a')) {
      if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const view = h('div', { class: 'view', 'data-route': name });
    $('#view').replaceChildren(view);
    const page = id ? pages[1] : pages[0];
    page(view, id).catch((err) => {
      if (view.isConnected && err.status === 404) view.append(muted('Not found in this tenant.'));
      report(err, view);
    });
  }

  async function loadTenants() {
    let items = [];
    try {
      items = (await api('GET', `/tenants${qs({ limit: 1000 })}`)).items;
    } catch (err) {
      if (err.status === 401) throw err;
    }
    // A user's role tenants are always choices, even if the list did not name them.
    const seen = new Set(items.map((t) => t.id));
    for (const r of state.me.roles || []) if (!seen.has(r.tenantId)) { items.push({ id: r.tenantId, name: r.tenantId }); seen.add(r.tenantId); }
    state.tenants = items;
    const stored = localStorage.getItem(TENANT_KEY);
    state.tenantId = seen.has(stored) ? stored : seen.has(state.tenantId) ? state.tenantId : items.length ? items[0].id : null;
    const sel = $('[data-test="tenant-select"]');
    sel.replaceChildren(...items.map((t) => h('option', { value: t.id }, t.name)));
    sel.value = state.tenantId || '';
    sel.disabled = items.length < 2;
  }

  async function logout() {
    try {
      await api('POST', '/logout');
    } catch (err) {
      if (err.status !== 401) { report(err); return; }
    }
    location.assign('/login');
  }

  async function boot() {
    try {
      state.me = await api('GET', '/me');
    } catch (err) {
      report(err);
      return;
    }
    $('[data-test="signed-in-as"]').textContent = state.me.email;
    $('[data-test="nav-users"]').hidden = !(state.me.isAdmin || (state.me.roles || []).some((r) => r.role === 'admin'));
    $('[data-test="logout"]').addEventListener('click', logout);
    await loadTenants();
    $('[data-test="tenant-select"]').addEventListener('change', (e) => {
      state.tenantId = e.target.value;
      localStorage.setItem(TENANT_KEY, state.tenantId);
      invalidate();
      // A detail page belongs to the old tenant: go to its list instead.
      const { name, id } = parseRoute();
      if (id && name !== 'tenants' && name !== 'users') location.hash = `#/${name}`;
      else render();
    });
    if (!state.tenants.length && !state.me.isAdmin) showError('You have no role in any tenant yet; ask an administrator.');
    window.addEventListener('hashchange', render);
    render();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
