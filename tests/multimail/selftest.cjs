#!/usr/bin/env node
// Self-test of the MultiMail double, through a validating Prism proxy.
//
//   MULTIMAIL_OPENAPI=/path/to/openapi.json node selftest.cjs
//
// Starts `node double.cjs --port 0` and `prism proxy ... --errors` (via
// prism.cjs) on 127.0.0.1, plus a tiny webhook receiver; prints "ok NAME" or
// "FAIL NAME" per check and finally "N passed, N failed". Exit 0 only if all
// checks pass. Every exchange through Prism is checked for violations (see
// README.md, "How violations show up").
'use strict';

const http = require('node:http');
const net = require('node:net');
const crypto = require('node:crypto');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startPrism } = require('./prism.cjs');

const OVERALL_TIMEOUT_MS = 110000;
const SPEC = process.env.MULTIMAIL_OPENAPI;
const VERBOSE = !!process.env.SELFTEST_VERBOSE;
const KEY = 'mm_live_selftest_all';
const SECRET = 'whsec_selftest_' + crypto.randomBytes(6).toString('hex');

let passed = 0; let failed = 0;
const exchanges = []; // every exchange through prism: {name, expect, violations}
function check(name, cond, detail) {
  if (cond) { passed++; process.stdout.write(`ok ${name}\n`); } else {
    failed++; process.stdout.write(`FAIL ${name}${detail !== undefined ? ' -- ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)).slice(0, 600) : ''}\n`);
  }
  return !!cond;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ processes
let doubleProc = null; let prism = null; let receiver = null; let prismLog = '';
const children = [];

function startDouble() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'double.cjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = ''; let lines = [];
    const t = setTimeout(() => reject(new Error('double did not start')), 10000);
    child.stdout.on('data', (c) => {
      out += c; lines = out.split('\n');
      const m = /^listening (\d+)$/.exec(lines[0]);
      if (m && lines.length > 1) { clearTimeout(t); resolve({ child, port: Number(m[1]), firstLine: lines[0], stdout: () => out }); }
    });
    child.stderr.on('data', (c) => { if (VERBOSE) process.stderr.write(`[double] ${c}`); });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`double exited (${code})`)); });
  });
}

async function cleanup() {
  const waits = [];
  if (prism) waits.push(prism.stop());
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      waits.push(new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); setTimeout(() => { try { c.kill('SIGKILL'); } catch (_) { /* gone */ } r(); }, 3000).unref(); }));
    }
  }
  if (receiver) waits.push(new Promise((r) => { receiver.server.close(() => r()); receiver.server.closeAllConnections(); }));
  await Promise.all(waits);
}

// ------------------------------------------------------------------ HTTP client
const agent = new http.Agent({ keepAlive: false });
function request(port, method, p, { body, headers, raw, timeoutMs = 8000 } = {}) {
  return new Promise((resolve) => {
    const h = Object.assign({}, headers || {});
    let data = null;
    if (raw !== undefined) data = Buffer.from(raw);
    else if (body !== undefined) { data = Buffer.from(JSON.stringify(body)); h['Content-Type'] = h['Content-Type'] || 'application/json'; }
    if (data) h['Content-Length'] = data.length;
    const t0 = Date.now();
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null; try { json = JSON.parse(text); } catch (_) { /* not json */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - t0 });
      });
      res.on('error', (e) => resolve({ status: 0, error: e.code || e.message, ms: Date.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.code || e.message, ms: Date.now() - t0 }));
    req.end(data || undefined);
  });
}
let PP; let DP; // prism port, double port
const auth = (key) => (key === null ? {} : { Authorization: `Bearer ${key || KEY}` });

// Violations prism reports on one exchange: the sl-violations header (any
// severity) plus Prism's own problem+json answers (422/401/404/500 ...).
function violationsOf(r) {
  const v = [];
  const h = r.headers && r.headers['sl-violations'];
  if (h) { try { v.push(...JSON.parse(h)); } catch (_) { v.push({ severity: 'Error', message: `unparseable sl-violations: ${h}` }); } }
  const ct = (r.headers && r.headers['content-type']) || '';
  if (ct.startsWith('application/problem+json')) v.push({ severity: 'Error', prism: true, type: r.json && r.json.type, status: r.status, message: r.json && (r.json.title + (r.json.validation ? ': ' + JSON.stringify(r.json.validation) : '')) });
  if (r.status === 0) v.push({ severity: 'Error', message: `transport error ${r.error}` });
  return v;
}
const UNMATCHED = /^Unable to match the returned status code with those defined in the document/;

// API call through prism. expect: 'clean' (zero violations, the default),
// 'undocumented' (the spec lists no such status for this operation: the only
// violation allowed is Prism's Warning "Unable to match the returned status
// code"), 'flag' (a negative control: Prism must report a violation).
async function api(name, method, p, opts = {}) {
  const expect = opts.expect || 'clean';
  const r = await request(PP, method, p, { body: opts.body, raw: opts.raw, headers: Object.assign(auth(opts.key), opts.headers || {}) });
  const v = violationsOf(r);
  r.violations = v;
  let ok;
  if (expect === 'clean') ok = v.length === 0;
  else if (expect === 'undocumented') ok = v.length === 1 && v[0].severity === 'Warning' && UNMATCHED.test(v[0].message);
  else ok = v.length > 0;
  exchanges.push({ name, expect, ok, violations: v, status: r.status });
  if (!ok) check(`prism-${expect}: ${name}`, false, { status: r.status, violations: v, body: r.text && r.text.slice(0, 300) });
  return r;
}
const direct = (method, p, opts = {}) => request(DP, method, p, { body: opts.body, raw: opts.raw, headers: Object.assign(auth(opts.key), opts.headers || {}), timeoutMs: opts.timeoutMs });
async function ctl(method, p, body) {
  const r = await request(DP, method, `/__control/${p}`, { body });
  if (r.status !== 200) throw new Error(`control ${method} ${p} -> ${r.status} ${r.text}`);
  return r.json;
}
const state = () => ctl('GET', 'state');

// ------------------------------------------------------------------ webhook receiver
function startReceiver() {
  return new Promise((resolve) => {
    const rec = { got: [], failNext: 0, alwaysFail: false, server: null, port: 0 };
    rec.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const entry = { path: req.url, headers: req.headers, raw: raw.toString('utf8'), json: null, answered: 200 };
        try { entry.json = JSON.parse(entry.raw); } catch (_) { /* keep raw */ }
        if (rec.alwaysFail || rec.failNext > 0) { if (rec.failNext > 0) rec.failNext--; entry.answered = 503; }
        rec.got.push(entry);
        res.writeHead(entry.answered, { 'Content-Type': 'text/plain' });
        res.end(entry.answered === 200 ? 'ok' : 'try later');
      });
    });
    rec.server.listen(0, '127.0.0.1', () => { rec.port = rec.server.address().port; resolve(rec); });
  });
}
function verifySig(entry, secret) {
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(entry.raw).digest('hex');
  const got = entry.headers['x-multimail-signature'] || '';
  return got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want));
}
async function waitFor(fn, ms = 5000, step = 25) {
  const end = Date.now() + ms;
  for (;;) { const v = await fn(); if (v) return v; if (Date.now() > end) return null; await sleep(step); }
}
const eventsFor = (emailId, ev) => receiver.got.filter((g) => g.json && (g.json.event || g.json.event_type) === ev && g.json.data && (g.json.data.email_id || g.json.data.message_id) === emailId && g.answered === 200);

// raw socket probe: what does a client see on the wire?
function rawProbe(port, p) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0); let err = null;
    s.on('connect', () => s.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`));
    s.on('data', (c) => { got = Buffer.concat([got, c]); });
    s.on('error', (e) => { err = e.code || e.message; });
    s.on('close', () => resolve({ bytes: got.toString('latin1'), err }));
    s.setTimeout(5000, () => s.destroy(new Error('probe timeout')));
  });
}

// ------------------------------------------------------------------ the tests
async function run() {
  const d = await startDouble();
  doubleProc = d.child; DP = d.port;
  check('double prints exactly "listening PORT"', /^listening \d+$/.test(d.firstLine) && d.stdout().trim().split('\n').length === 1, d.stdout());
  prism = await startPrism({ spec: SPEC, upstream: `http://127.0.0.1:${DP}`, port: 0, onLog: (s) => { prismLog += s; if (prismLog.length > 200000) prismLog = prismLog.slice(-100000); if (VERBOSE) process.stderr.write(`[prism] ${s}`); } });
  children.push(prism.child);
  PP = prism.port;
  check(`prism ${prism.version} proxy listening (${prism.args.join(' ')})`, PP > 0);
  receiver = await startReceiver();
  const hookUrl = `http://127.0.0.1:${receiver.port}/hook`;
  await ctl('POST', 'reset');
  await ctl('POST', 'config', { webhook_backoff_ms: 50 });
  await ctl('POST', 'webhook', { secret: SECRET }); // signing secret for mailbox webhook_urls

  // ---------------- auth
  {
    const r = await direct('GET', '/v1/oversight/pending', { key: null });
    check('auth: missing key -> 401 {error} (direct)', r.status === 401 && typeof (r.json && r.json.error) === 'string', r);
    const p = await api('missing key', 'GET', '/v1/oversight/pending', { key: null, expect: 'flag' });
    check('auth: missing key through prism -> prism 401 UNAUTHORIZED (security violation, not forwarded)', p.status === 401 && /UNAUTHORIZED/.test(p.json && p.json.type), p.text);
    const b = await api('bad key', 'GET', '/v1/oversight/pending', { key: 'sk_nope', expect: 'undocumented' });
    check('auth: bad key -> 401 {error} from the double', b.status === 401 && typeof (b.json && b.json.error) === 'string', b.text);
  }
  await ctl('POST', 'keys', { keys: [{ key: 'mm_live_sendonly', scopes: ['send'] }, { key: 'mm_live_reader', scopes: ['read'] }, { key: 'mm_live_overseer', scopes: ['oversight'] }, { key: 'mm_live_admin', scopes: ['admin'] }] });

  // ---------------- mailboxes
  const mbr = await api('create mailbox', 'POST', '/v1/mailboxes', { key: 'mm_live_admin', body: { address_local: 'followups', display_name: 'Follow-ups', webhook_url: hookUrl } });
  check('mailbox: 201 {id, address}', mbr.status === 201 && typeof mbr.json.id === 'string' && mbr.json.address === 'followups@aftercall-test.multimail.dev', mbr.text);
  check('mailbox: starts in gated_send', mbr.json && mbr.json.oversight_mode === 'gated_send');
  const MB = mbr.json.id;
  const dup = await api('create mailbox again', 'POST', '/v1/mailboxes', { key: 'mm_live_admin', body: { address_local: 'followups' } });
  check('mailbox: 409 when the address is taken', dup.status === 409 && typeof dup.json.error === 'string', dup.text);
  const scope = await api('create mailbox with send-only key', 'POST', '/v1/mailboxes', { key: 'mm_live_sendonly', body: { address_local: 'nope' } });
  check('auth: limited-scope key -> 403 outside its scopes (send key creating mailbox)', scope.status === 403 && /admin/.test(scope.json.error), scope.text);
  const scope2 = await api('read key reading oversight queue', 'GET', '/v1/oversight/pending', { key: 'mm_live_reader', expect: 'undocumented' });
  check('auth: read-only key -> 403 on oversight/pending', scope2.status === 403, scope2.text);
  const noLocal = await api('create mailbox without address_local', 'POST', '/v1/mailboxes', { body: { display_name: 'x' }, expect: 'flag' });
  check('mailbox: missing address_local rejected by prism (422, never reaches the double)', noLocal.status === 422, noLocal.text);

  // approval flow (202 + approval_code)
  await ctl('POST', 'config', { mailbox_approval: true });
  const a1 = await direct('POST', '/v1/mailboxes', { body: { address_local: 'approved' } });
  check('mailbox approval: first call -> 202 {status: pending_approval} (direct)', a1.status === 202 && a1.json.status === 'pending_approval', a1.text);
  const a1p = await api('create mailbox needing approval (202 not in spec)', 'POST', '/v1/mailboxes', { body: { address_local: 'approved' }, expect: 'flag' });
  check('mailbox approval: prism flags the 202 (openapi.json lists 201,400,403,409 only)', a1p.status === 500 && /VIOLATIONS/.test(a1p.json.type), a1p.text);
  const wrong = await api('create mailbox with wrong approval_code', 'POST', '/v1/mailboxes', { body: { address_local: 'approved', approval_code: 'ZZZ-999' } });
  check('mailbox approval: wrong approval_code -> 403', wrong.status === 403, wrong.text);
  const code = (await state()).pending_approvals['approved@aftercall-test.multimail.dev'];
  const a2 = await api('create mailbox with approval_code', 'POST', '/v1/mailboxes', { body: { address_local: 'approved', approval_code: code } });
  check('mailbox approval: retry with approval_code -> 201', a2.status === 201 && a2.json.address === 'approved@aftercall-test.multimail.dev', a2.text);
  await ctl('POST', 'config', { mailbox_approval: false });

  // ---------------- send
  const sendBody = (extra) => Object.assign({ to: ['alice@example.com'], subject: 'Your call summary', markdown: '# Thanks\nHere is the summary.' }, extra || {});
  const s1 = await api('send', 'POST', `/v1/mailboxes/${MB}/send`, { key: 'mm_live_sendonly', body: sendBody({ cc: ['bob@example.com'], bcc: ['audit@example.com'], attachments: [{ name: 'a.txt', content_base64: Buffer.from('hello').toString('base64'), content_type: 'text/plain' }] }) });
  check('send: 202 {id, status: pending_scan, thread_id}', s1.status === 202 && typeof s1.json.id === 'string' && s1.json.status === 'pending_scan' && typeof s1.json.thread_id === 'string', s1.text);
  const E1 = s1.json.id; const T1 = s1.json.thread_id;
  const g1 = await api('get email', 'GET', `/v1/mailboxes/${MB}/emails/${E1}`, { key: 'mm_live_reader' });
  check('send: email then waits in pending_send_approval', g1.status === 200 && g1.json.status === 'pending_send_approval' && g1.json.delivered_at === null, g1.text);
  check('get email: markdown, cc and attachment metadata', g1.json.markdown === '# Thanks\nHere is the summary.' && g1.json.cc[0] === 'bob@example.com' && g1.json.attachments[0].size === 5 && g1.json.has_attachments === true, g1.text);
  const scope3 = await api('send with read key', 'POST', `/v1/mailboxes/${MB}/send`, { key: 'mm_live_reader', body: sendBody() });
  check('auth: read key cannot send -> 403', scope3.status === 403, scope3.text);

  // validation
  const vEmpty = await api('send with empty to', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ to: [] }) });
  check('send validation: to [] -> 400 {error}', vEmpty.status === 400 && typeof vEmpty.json.error === 'string', vEmpty.text);
  const many = Array.from({ length: 51 }, (_, i) => `u${i}@example.com`);
  const v51 = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ to: many }) });
  check('send validation: 51 recipients -> 400 (direct)', v51.status === 400 && /50/.test(v51.json.error), v51.text);
  const v50 = await api('send with 50 recipients', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ to: many.slice(0, 50) }) });
  check('send validation: 50 recipients accepted', v50.status === 202, v50.text);
  const vSubj = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ subject: 'x'.repeat(999) }) });
  check('send validation: subject of 999 chars -> 400 (direct)', vSubj.status === 400 && /998/.test(vSubj.json.error), vSubj.text);
  const vSubjOk = await api('send with 998-char subject', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ subject: 's'.repeat(998) }) });
  check('send validation: subject of 998 chars accepted', vSubjOk.status === 202, vSubjOk.text);
  const vMd = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ markdown: 'm'.repeat(262145) }) });
  check('send validation: markdown over 262144 chars -> 400 (direct)', vMd.status === 400 && /262144/.test(vMd.json.error), vMd.text);
  const vMdOk = await api('send with 262144-char markdown', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ markdown: 'm'.repeat(262144) }) });
  check('send validation: markdown of 262144 chars accepted', vMdOk.status === 202, vMdOk.text);
  const vNoSubj = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: { to: ['a@example.com'], markdown: 'x' } });
  check('send validation: missing subject -> 400 (direct)', vNoSubj.status === 400, vNoSubj.text);
  const vCc = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ cc: 'bob@example.com' }) });
  check('send validation: cc as a string -> 400 (direct)', vCc.status === 400, vCc.text);
  const vGate = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ gate_timing: 'whenever' }) });
  check('send validation: bad gate_timing -> 400 (direct)', vGate.status === 400, vGate.text);
  const nomb = await api('send to unknown mailbox', 'POST', '/v1/mailboxes/mbx_missing/send', { body: sendBody(), expect: 'undocumented' });
  check('send: unknown mailbox -> 404 {error}', nomb.status === 404 && typeof nomb.json.error === 'string', nomb.text);

  // negative controls: prism must flag requests that break the spec
  const before = (await ctl('GET', 'requests')).requests.length;
  const neg = await api('NEGATIVE CONTROL send with to as a string', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ to: 'alice@example.com' }), expect: 'flag' });
  check('negative control: prism flags `to` as a string (422 UNPROCESSABLE_ENTITY)', neg.status === 422 && /UNPROCESSABLE_ENTITY/.test(neg.json.type) && JSON.stringify(neg.json.validation).includes('to'), neg.text);
  const neg2 = await api('NEGATIVE CONTROL send with 51 recipients', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ to: many }), expect: 'flag' });
  check('negative control: prism flags 51 recipients (maxItems 50)', neg2.status === 422, neg2.text);
  const neg3 = await api('NEGATIVE CONTROL subject of 999 chars', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ subject: 'x'.repeat(999) }), expect: 'flag' });
  check('negative control: prism flags a 999-char subject (maxLength 998)', neg3.status === 422, neg3.text);
  const after = (await ctl('GET', 'requests')).requests.length;
  check('negative control: flagged requests never reached the double', after === before, { before, after });
  await ctl('POST', 'faults', { bad_shape: true });
  const neg4 = await api('NEGATIVE CONTROL response with wrong types', 'GET', `/v1/mailboxes/${MB}/emails`, { expect: 'flag' });
  check('negative control: prism flags a response that breaks the spec (500 VIOLATIONS + sl-violations)', neg4.status === 500 && /VIOLATIONS/.test(neg4.json.type) && !!neg4.headers['sl-violations'], neg4.text);
  await ctl('POST', 'faults', {});

  // ---------------- idempotency
  const k = 'idem-' + crypto.randomBytes(4).toString('hex');
  const i1 = await api('send with idempotency_key', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: k }) });
  const i2 = await api('send repeated idempotency_key', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: k }) });
  check('idempotency: first send 202', i1.status === 202, i1.text);
  check('idempotency: repeat -> 200 {id: original, status: already_sent, idempotent: true}', i2.status === 200 && i2.json.id === i1.json.id && i2.json.status === 'already_sent' && i2.json.idempotent === true, i2.text);
  let st = await state();
  check('idempotency: state counts 2 attempts, 1 email created', st.idempotency[k].attempts === 2 && st.idempotency[k].emails_created === 1 && st.emails.filter((e) => e.idempotency_key === k).length === 1, st.idempotency[k]);
  await ctl('POST', 'clock', { advance_ms: 24 * 3600 * 1000 + 1000 });
  const i3 = await api('send idempotency_key after 24 h', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: k }) });
  st = await state();
  check('idempotency: key expires after 24 h (new email)', i3.status === 202 && i3.json.id !== i1.json.id && st.idempotency[k].emails_created === 2, i3.text);

  // ---------------- list / paging / thread
  const l1 = await api('list emails limit=2', 'GET', `/v1/mailboxes/${MB}/emails?limit=2`, { key: 'mm_live_reader' });
  check('list: {emails[], cursor}, limit honoured, no bodies', l1.status === 200 && l1.json.emails.length === 2 && typeof l1.json.cursor === 'string' && !('markdown' in l1.json.emails[0]), l1.text);
  const l2 = await api('list emails next page', 'GET', `/v1/mailboxes/${MB}/emails?limit=2&cursor=${encodeURIComponent(l1.json.cursor)}`);
  check('list: cursor gives the next page', l2.status === 200 && l2.json.emails.length >= 1 && !l2.json.emails.some((e) => l1.json.emails.find((x) => x.id === e.id)), l2.text);
  const lAll = await api('list emails limit=100', 'GET', `/v1/mailboxes/${MB}/emails?limit=100&direction=outbound`);
  check('list: limit=100 lists everything, cursor null', lAll.status === 200 && lAll.json.cursor === null && lAll.json.emails.length === st.emails.filter((e) => e.mailbox_id === MB).length, lAll.text);
  const l0 = await api('NEGATIVE CONTROL list limit=0', 'GET', `/v1/mailboxes/${MB}/emails?limit=0`, { expect: 'flag' });
  check('list: limit=0 flagged by prism (minimum 1)', l0.status === 422, l0.text);
  const l101 = await direct('GET', `/v1/mailboxes/${MB}/emails?limit=101`);
  check('list: limit=101 -> 400 (direct)', l101.status === 400, l101.text);
  const th = await api('get thread', 'GET', `/v1/mailboxes/${MB}/threads/${T1}`);
  check('thread: {thread_id, message_count, participants, last_activity, has_unanswered_inbound, emails[]}', th.status === 200 && th.json.thread_id === T1 && th.json.message_count === 1 && th.json.participants.includes('alice@example.com') && th.json.has_unanswered_inbound === false && th.json.emails[0].id === E1, th.text);
  const th404 = await api('get missing thread', 'GET', `/v1/mailboxes/${MB}/threads/thr_missing`);
  check('thread: 404 when missing', th404.status === 404 && typeof th404.json.error === 'string', th404.text);
  const e404 = await api('get missing email', 'GET', `/v1/mailboxes/${MB}/emails/em_missing`);
  check('get email: 404 when missing', e404.status === 404, e404.text);

  // ---------------- oversight: pending, approve -> delivered, reject
  const pend = await api('oversight pending', 'GET', '/v1/oversight/pending', { key: 'mm_live_overseer' });
  check('pending: lists pending_send_approval emails with body_markdown', pend.status === 200 && pend.json.emails.some((e) => e.id === E1 && e.status === 'pending_send_approval' && e.mailbox_id === MB && typeof e.body_markdown === 'string'), pend.text);
  receiver.got.length = 0;
  const ap = await api('decide approve', 'POST', '/v1/oversight/decide', { key: 'mm_live_overseer', body: { email_id: E1, action: 'approve' } });
  check('decide approve -> 200 {status: approved_and_sent}', ap.status === 200 && ap.json.status === 'approved_and_sent', ap.text);
  const g2 = await api('get approved email', 'GET', `/v1/mailboxes/${MB}/emails/${E1}`);
  check('approve: email delivered (delivered_at, approved_at, approved_by set; status in the spec enum)', g2.status === 200 && !!g2.json.delivered_at && !!g2.json.approved_at && !!g2.json.approved_by && g2.json.status === 'read', g2.text);
  const s2 = await api('send (to be rejected)', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ subject: 'Reject me' }) });
  const rj = await api('decide reject', 'POST', '/v1/oversight/decide', { key: 'mm_live_overseer', body: { email_id: s2.json.id, action: 'reject', reason: 'wrong recipient' } });
  check('decide reject -> 200 {status: rejected}', rj.status === 200 && rj.json.status === 'rejected', rj.text);
  const g3 = await api('get rejected email', 'GET', `/v1/mailboxes/${MB}/emails/${s2.json.id}`);
  check('reject: email status rejected, never delivered', g3.json.status === 'rejected' && g3.json.delivered_at === null, g3.text);
  const dUnknown = await api('decide unknown email', 'POST', '/v1/oversight/decide', { key: 'mm_live_overseer', body: { email_id: 'em_missing', action: 'approve' } });
  check('decide: unknown email -> 404', dUnknown.status === 404, dUnknown.text);
  const dAgain = await api('decide already decided', 'POST', '/v1/oversight/decide', { key: 'mm_live_overseer', body: { email_id: E1, action: 'reject' } });
  check('decide: already decided -> 404 (not pending)', dAgain.status === 404, dAgain.text);
  const dBad = await api('NEGATIVE CONTROL decide with bad action', 'POST', '/v1/oversight/decide', { key: 'mm_live_overseer', body: { email_id: E1, action: 'maybe' }, expect: 'flag' });
  check('decide: action outside approve|reject flagged by prism', dBad.status === 422, dBad.text);
  const dScope = await api('decide with send key', 'POST', '/v1/oversight/decide', { key: 'mm_live_sendonly', body: { email_id: E1, action: 'approve' }, expect: 'undocumented' });
  check('auth: send key cannot decide -> 403', dScope.status === 403, dScope.text);

  // webhooks for approve / reject
  const okApproved = await waitFor(() => eventsFor(E1, 'oversight.approved').length && eventsFor(E1, 'message.delivered').length);
  check('webhook: oversight.approved and message.delivered posted to the mailbox webhook_url', !!okApproved, receiver.got.map((g) => g.raw));
  const evA = eventsFor(E1, 'oversight.approved')[0];
  const evD = eventsFor(E1, 'message.delivered')[0];
  check('webhook: X-MultiMail-Signature is sha256=<HMAC-SHA256(raw body, secret)>', !!evA && verifySig(evA, SECRET) && verifySig(evD, SECRET) && /^sha256=[0-9a-f]{64}$/.test(evA.headers['x-multimail-signature']), evA && evA.headers);
  check('webhook: a wrong secret does not verify (HMAC check can fail)', !!evA && !verifySig(evA, SECRET + 'x'));
  check('webhook: body {event, timestamp, data{email_id, mailbox_id, thread_id, from, to, subject}}', !!evD && typeof evD.json.timestamp === 'string' && !isNaN(Date.parse(evD.json.timestamp)) && evD.json.data.mailbox_id === MB && evD.json.data.thread_id === T1 && evD.json.data.from === 'followups@aftercall-test.multimail.dev' && evD.json.data.to[0] === 'alice@example.com' && evD.json.data.subject === 'Your call summary' && evD.json.data.direction === 'outbound', evD && evD.raw);
  const okRejected = await waitFor(() => eventsFor(s2.json.id, 'oversight.rejected').length);
  check('webhook: oversight.rejected posted (with reason)', !!okRejected && eventsFor(s2.json.id, 'oversight.rejected')[0].json.data.reason === 'wrong recipient' && verifySig(eventsFor(s2.json.id, 'oversight.rejected')[0], SECRET));

  // ---------------- reply
  const rp = await api('reply', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { markdown: 'One more thing.' } });
  check('reply: 202 {id, status: pending_scan, thread_id (same thread)}', rp.status === 202 && rp.json.status === 'pending_scan' && rp.json.thread_id === T1, rp.text);
  const rp2 = await api('reply same content', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { markdown: 'One more thing.' } });
  check('reply: identical content within 60 s -> 409', rp2.status === 409 && typeof rp2.json.error === 'string', rp2.text);
  const rk = 'reply-' + crypto.randomBytes(4).toString('hex');
  const rp3 = await api('reply with idempotency_key', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { markdown: 'Third note.', idempotency_key: rk } });
  const rp4 = await api('reply repeated idempotency_key', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { markdown: 'Third note.', idempotency_key: rk } });
  check('reply: repeated idempotency_key -> 200 already_sent with the original id', rp3.status === 202 && rp4.status === 200 && rp4.json.id === rp3.json.id && rp4.json.idempotent === true, [rp3.text, rp4.text]);
  await ctl('POST', 'clock', { advance_ms: 61000 });
  const rp5 = await api('reply same content after 61 s', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { markdown: 'One more thing.' } });
  check('reply: identical content after 60 s accepted again', rp5.status === 202, rp5.text);
  const rpNo = await api('NEGATIVE CONTROL reply without markdown', 'POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: { cc: ['a@example.com'] }, expect: 'flag' });
  check('reply: missing markdown flagged by prism', rpNo.status === 422, rpNo.text);
  const rpDirect = await direct('POST', `/v1/mailboxes/${MB}/reply/${E1}`, { body: {} });
  check('reply: missing markdown -> 400 (direct)', rpDirect.status === 400, rpDirect.text);

  // ---------------- cancel
  const c1 = await api('cancel pending reply', 'POST', `/v1/mailboxes/${MB}/emails/${rp.json.id}/cancel`);
  check('cancel: pending email -> 200 {id, status: cancelled}', c1.status === 200 && c1.json.status === 'cancelled' && c1.json.id === rp.json.id, c1.text);
  const c2 = await api('cancel again', 'POST', `/v1/mailboxes/${MB}/emails/${rp.json.id}/cancel`);
  check('cancel: idempotent 200', c2.status === 200 && c2.json.status === 'cancelled', c2.text);
  const c3 = await api('cancel delivered email', 'POST', `/v1/mailboxes/${MB}/emails/${E1}/cancel`);
  check('cancel: delivered email -> 409', c3.status === 409, c3.text);
  const c4 = await api('cancel missing email', 'POST', `/v1/mailboxes/${MB}/emails/em_missing/cancel`);
  check('cancel: unknown email -> 404', c4.status === 404, c4.text);
  const c5 = await api('NEGATIVE CONTROL cancel with a JSON body', 'POST', `/v1/mailboxes/${MB}/emails/${rp3.json.id}/cancel`, { body: {}, expect: 'flag' });
  check('cancel: a body on cancel is flagged by prism (operation has no requestBody; send none)', c5.status === 422, c5.text);
  const g4 = await api('get cancelled email', 'GET', `/v1/mailboxes/${MB}/emails/${rp.json.id}`);
  check('cancel: email status cancelled', g4.json.status === 'cancelled', g4.text);

  // ---------------- inbound / bounce / alternative spelling / retries
  receiver.got.length = 0;
  const inb = await ctl('POST', 'inbound', { email_id: E1, from: 'alice@example.com', markdown: 'Thanks, got it!' });
  const inId = inb.email.id;
  check('inbound: control API injects a reply into the thread', inb.thread_id === T1 && inb.email.status === 'unread');
  const okRecv = await waitFor(() => eventsFor(inId, 'message.received').length);
  const evR = okRecv && eventsFor(inId, 'message.received')[0];
  check('webhook: message.received posted, signed, direction inbound', !!evR && verifySig(evR, SECRET) && evR.json.data.direction === 'inbound' && evR.json.data.thread_id === T1 && evR.json.data.from === 'alice@example.com');
  const th2 = await api('get thread after inbound', 'GET', `/v1/mailboxes/${MB}/threads/${T1}`);
  check('thread: inbound reply listed, has_unanswered_inbound true', th2.status === 200 && th2.json.emails.some((e) => e.id === inId && e.direction === 'inbound') && th2.json.has_unanswered_inbound === true, th2.text);
  const lIn = await api('list inbound unread', 'GET', `/v1/mailboxes/${MB}/emails?direction=inbound&status=unread`);
  check('list: filter direction=inbound&status=unread', lIn.status === 200 && lIn.json.emails.length === 1 && lIn.json.emails[0].id === inId, lIn.text);
  const gIn = await api('read inbound', 'GET', `/v1/mailboxes/${MB}/emails/${inId}`);
  check('get email: reading an unread inbound email marks it read', gIn.json.markdown === 'Thanks, got it!' && gIn.json.status === 'read', gIn.text);

  await ctl('POST', 'bounce', { email_id: E1, bounce_type: 'HardBounce' });
  const okB = await waitFor(() => eventsFor(E1, 'message.bounced').length);
  check('webhook: message.bounced posted (bounce_type)', !!okB && eventsFor(E1, 'message.bounced')[0].json.data.bounce_type === 'HardBounce' && verifySig(eventsFor(E1, 'message.bounced')[0], SECRET));
  const gB = await api('get bounced email', 'GET', `/v1/mailboxes/${MB}/emails/${E1}`);
  check('bounce: bounced_at and bounce_type set', !!gB.json.bounced_at && gB.json.bounce_type === 'HardBounce', gB.text);

  // webhook configured through the control API (own secret), alternative spelling
  const mb2 = await api('create mailbox without webhook_url', 'POST', '/v1/mailboxes', { body: { address_local: 'plain' } });
  const MB2 = mb2.json.id;
  const secret2 = 'whsec_alt_' + crypto.randomBytes(4).toString('hex');
  await ctl('POST', 'webhook', { url: `http://127.0.0.1:${receiver.port}/alt`, secret: secret2, alt_spelling: true });
  receiver.got.length = 0;
  const s3 = await api('send (alt spelling)', 'POST', `/v1/mailboxes/${MB2}/send`, { body: sendBody() });
  await api('decide approve (alt spelling)', 'POST', '/v1/oversight/decide', { body: { email_id: s3.json.id, action: 'approve' } });
  const okAlt = await waitFor(() => eventsFor(s3.json.id, 'email.approved').length && eventsFor(s3.json.id, 'email.delivered').length);
  check('webhook: control-API URL + secret, alternative spelling email.approved / email.delivered', !!okAlt && verifySig(eventsFor(s3.json.id, 'email.approved')[0], secret2) && eventsFor(s3.json.id, 'email.approved')[0].path === '/alt', receiver.got.map((g) => g.raw));
  await ctl('POST', 'webhook', { url: `http://127.0.0.1:${receiver.port}/alt`, secret: secret2, alt_spelling: true, alt_fields: true });
  receiver.got.length = 0;
  await ctl('POST', 'inbound', { mailbox_id: MB2, from: 'carol@example.com', subject: 'New thread', markdown: 'hi' });
  const okAltF = await waitFor(() => receiver.got.find((g) => g.json && g.json.event_type === 'email.received' && g.json.data.message_id));
  check('webhook: alt_fields uses event_type / message_id', !!okAltF && verifySig(okAltF, secret2));

  // delivery failures are retried and recorded
  await ctl('POST', 'webhook', { url: `http://127.0.0.1:${receiver.port}/retry`, secret: secret2 });
  receiver.got.length = 0; receiver.failNext = 2;
  const s4 = await api('send (webhook retry)', 'POST', `/v1/mailboxes/${MB2}/send`, { body: sendBody() });
  await api('decide reject (webhook retry)', 'POST', '/v1/oversight/decide', { body: { email_id: s4.json.id, action: 'reject' } });
  const dlv = await waitFor(async () => { const s = await state(); const x = s.webhook_deliveries.find((w) => w.email_id === s4.json.id && w.event === 'oversight.rejected'); return x && x.status !== 'pending' ? x : null; });
  check('webhook retry: 2 failures then delivered on attempt 3, recorded', !!dlv && dlv.status === 'delivered' && dlv.attempts === 3 && dlv.errors.length === 2 && receiver.got.filter((g) => g.path === '/retry').length === 3, dlv);
  const bodies = new Set(receiver.got.filter((g) => g.path === '/retry').map((g) => g.raw));
  check('webhook retry: every attempt carries the identical signed body', bodies.size === 1);
  receiver.alwaysFail = true;
  const s5 = await api('send (webhook failing)', 'POST', `/v1/mailboxes/${MB2}/send`, { body: sendBody() });
  await api('decide reject (webhook failing)', 'POST', '/v1/oversight/decide', { body: { email_id: s5.json.id, action: 'reject' } });
  const dlv2 = await waitFor(async () => { const s = await state(); const x = s.webhook_deliveries.find((w) => w.email_id === s5.json.id); return x && x.status !== 'pending' ? x : null; });
  check('webhook retry: gives up after 1 + 3 retries, recorded as failed with response_status', !!dlv2 && dlv2.status === 'failed' && dlv2.attempts === 4 && dlv2.response_status === 503, dlv2);
  receiver.alwaysFail = false;
  await ctl('POST', 'webhook', { url: null, secret: SECRET });

  // ---------------- fault modes
  // fail_every
  await ctl('POST', 'faults', { fail_every: 2 });
  const f1 = await api('fail_every call 1', 'GET', '/v1/oversight/pending');
  const f2 = await api('fail_every call 2', 'GET', '/v1/oversight/pending', { expect: 'undocumented' });
  const f3 = await api('fail_every call 3', 'GET', '/v1/oversight/pending');
  const f4 = await api('fail_every call 4', 'GET', '/v1/oversight/pending', { expect: 'undocumented' });
  check('fault fail_every=2: every 2nd call answers 500 {error}', f1.status === 200 && f2.status === 500 && f3.status === 200 && f4.status === 500 && typeof f2.json.error === 'string', [f1.status, f2.status, f3.status, f4.status]);
  // rate_limit
  await ctl('POST', 'faults', { rate_limit: { every: 1, retry_after: 7 } });
  const kr = 'rl-' + crypto.randomBytes(4).toString('hex');
  const r1 = await api('rate limited send', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: kr }) });
  check('fault rate_limit: 429 with Retry-After and {error} (429 is documented for send)', r1.status === 429 && r1.headers['retry-after'] === '7' && /rate limit/i.test(r1.json.error), [r1.status, r1.headers, r1.text]);
  st = await state();
  check('fault rate_limit: the send never reached the handler (0 attempts counted)', !st.idempotency[kr]);
  await ctl('POST', 'faults', { rate_limit: { every: 1, retry_after: 3, kind: 'warmup' } });
  const r2 = await api('warm-up limited send', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody() });
  check('fault rate_limit kind=warmup: body adds warmup_stage, daily_sent, daily_limit, hint', r2.status === 429 && r2.json.warmup_stage !== undefined && r2.json.daily_limit !== undefined && typeof r2.json.hint === 'string', r2.text);
  await ctl('POST', 'faults', { rate_limit: { every: 2, retry_after: 1, kind: 'quota' } });
  const r3a = await api('quota call 1', 'GET', '/v1/oversight/pending');
  const r3 = await api('quota-limited list', 'GET', '/v1/oversight/pending', { expect: 'undocumented' });
  check('fault rate_limit every=2 kind=quota: 2nd call 429, error mentions quota', r3a.status === 200 && r3.status === 429 && /quota/i.test(r3.json.error), r3.text);
  // slow_ms
  await ctl('POST', 'faults', { slow_ms: 400 });
  const sl = await api('slow call', 'GET', '/v1/oversight/pending');
  check('fault slow_ms=400: answer delayed >= 400 ms, still valid', sl.status === 200 && sl.ms >= 400, sl.ms);
  // reset_every (handler runs, answer is cut off)
  await ctl('POST', 'faults', { reset_every: 1 });
  const probe = await rawProbe(DP, '/v1/oversight/pending');
  check('fault reset_every=1: status line + partial headers, then the socket is destroyed (direct)', /^HTTP\/1\.1 200 OK\r\nContent-Type: applic/.test(probe.bytes) && !probe.bytes.includes('\r\n\r\n'), probe);
  const kz = 'reset-' + crypto.randomBytes(4).toString('hex');
  const rs = await direct('POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: kz }) });
  check('fault reset_every: a client sees a transport error (direct)', rs.status === 0 && !!rs.error, rs);
  const rsp = await api('reset through prism', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: kz }), expect: 'flag' });
  check('fault reset_every through prism: prism answers 500 problem+json (FetchError), not a reset', rsp.status === 500 && /FetchError/.test(rsp.json && rsp.json.type), rsp.text);
  await ctl('POST', 'faults', {});
  const rsRetry = await api('retry after reset', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: kz }) });
  st = await state();
  check('fault reset_every: the cut-off send was processed; a retry with the same key -> 200 already_sent; 3 attempts, 1 email', rsRetry.status === 200 && rsRetry.json.status === 'already_sent' && st.idempotency[kz].attempts === 3 && st.idempotency[kz].emails_created === 1, st.idempotency[kz]);
  // down
  await ctl('POST', 'faults', { down: true });
  const dn = await rawProbe(DP, '/v1/oversight/pending');
  check('fault down: connection closed without a single byte (direct)', dn.bytes.length === 0, dn);
  const dnp = await api('down through prism', 'GET', '/v1/oversight/pending', { expect: 'flag' });
  check('fault down through prism: prism answers 500 problem+json (FetchError)', dnp.status === 500 && /FetchError/.test(dnp.json && dnp.json.type), dnp.text);
  const ctlWhileDown = await request(DP, 'GET', '/__control/state');
  check('fault down: control API still answers', ctlWhileDown.status === 200);
  await ctl('POST', 'faults', {});
  // status_for_send
  await ctl('POST', 'faults', { status_for_send: 400 });
  const ks = 'sfs-' + crypto.randomBytes(4).toString('hex');
  const sf = await api('status_for_send 400', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody({ idempotency_key: ks }) });
  st = await state();
  check('fault status_for_send=400: send answers 400 {error}, counted as an attempt, no email', sf.status === 400 && typeof sf.json.error === 'string' && st.idempotency[ks].attempts === 1 && st.idempotency[ks].emails_created === 0, [sf.text, st.idempotency[ks]]);
  const sfList = await api('status_for_send leaves other calls alone', 'GET', `/v1/mailboxes/${MB}/emails?limit=1`);
  check('fault status_for_send: other calls unaffected', sfList.status === 200);
  await ctl('POST', 'faults', { status_for_send: 503 });
  const sf2 = await api('status_for_send 503', 'POST', `/v1/mailboxes/${MB}/send`, { body: sendBody() , expect: 'undocumented' });
  check('fault status_for_send=503', sf2.status === 503, sf2.text);
  await ctl('POST', 'faults', {});

  // ---------------- control API: requests log and state
  const log = (await ctl('GET', 'requests')).requests;
  check('requests log: method, path, status for every API call (faults marked)', log.length > 50 && log.every((r) => r.method && r.path && (typeof r.status === 'number')) && log.some((r) => r.fault === 'reset') && log.some((r) => r.fault === 'down') && log.some((r) => r.fault === 'fail_every' && r.status === 500), log.slice(-3));
  check('requests log: no control calls in it', !log.some((r) => r.path.startsWith('/__control/')));
  st = await state();
  check('state: mailboxes, emails with statuses, idempotency counts, webhook deliveries', st.mailboxes.length === 3 && st.emails.length > 10 && st.emails.every((e) => typeof e.status === 'string') && Object.keys(st.idempotency).length >= 4 && st.webhook_deliveries.length > 5 && st.webhook_deliveries.every((w) => ['pending', 'delivered', 'failed'].includes(w.status)));
  await ctl('POST', 'reset');
  st = await state();
  check('control reset: empty state', st.mailboxes.length === 0 && st.emails.length === 0 && st.webhook_deliveries.length === 0);

  // ---------------- prism verdict over all exchanges
  const clean = exchanges.filter((x) => x.expect === 'clean');
  const undoc = exchanges.filter((x) => x.expect === 'undocumented');
  const flag = exchanges.filter((x) => x.expect === 'flag');
  const bad = exchanges.filter((x) => !x.ok);
  check(`prism: ${clean.length} exchanges with zero violations, ${undoc.length} with only the undocumented-status warning, ${flag.length} negative controls flagged`, bad.length === 0 && clean.length >= 50, bad.map((x) => x.name));
}

// ------------------------------------------------------------------ main
(async () => {
  if (!SPEC) {
    process.stdout.write('FAIL setup -- MULTIMAIL_OPENAPI is not set (path to MultiMail openapi.json)\n0 passed, 1 failed\n');
    process.exit(2);
  }
  const watchdog = setTimeout(async () => {
    check(`overall time limit ${OVERALL_TIMEOUT_MS} ms`, false);
    await cleanup().catch(() => {});
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      check(`interrupted by ${sig}`, false);
      await cleanup().catch(() => {});
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
      process.exit(1);
    });
  }
  const t0 = Date.now();
  try {
    await run();
  } catch (e) {
    check('selftest ran to completion', false, e && e.stack);
    if (prismLog && !VERBOSE) process.stderr.write(`--- last prism log ---\n${prismLog.slice(-3000)}\n`);
  }
  await cleanup().catch(() => {});
  clearTimeout(watchdog);
  if (VERBOSE) process.stderr.write(`selftest took ${Date.now() - t0} ms\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed ? 1 : 0);
})();
