#!/usr/bin/env node
// MultiMail API test double: stateful, in memory, plain node:http.
// Shapes follow MultiMail's OpenAPI description (openapi.json, "MultiMail API"
// 2.0.0); see README.md in this directory for the control API and fault modes.
//
//   node double.cjs --port 0 [--host 127.0.0.1]
// prints exactly one line "listening PORT" on stdout when ready.
'use strict';

const http = require('node:http');
const https = require('node:https');
const crypto = require('node:crypto');

const DAY_MS = 24 * 3600 * 1000;
const REPLY_DUP_WINDOW_MS = 60 * 1000;
const DEFAULT_SECRET = 'whsec_double_default_secret';
const TENANT_DOMAIN = 'aftercall-test.multimail.dev';
const ALL_SCOPES = ['read', 'send', 'admin', 'oversight'];
// EmailSummary.status / EmailResponse.status enum in openapi.json.
const STATUS_ENUM = ['unread', 'read', 'archived', 'deleted', 'pending_send_approval',
  'pending_inbound_approval', 'rejected', 'cancelled', 'send_failed', 'scheduled',
  'spam_flagged', 'spam_quarantined'];
const EMAIL_RE = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

function defaultConfig() {
  return {
    mailbox_approval: false,        // POST /v1/mailboxes answers 202 until retried with approval_code
    delivered_status: 'read',       // status of an approved+delivered outbound email (must be in the enum)
    bounced_status: 'send_failed',  // status after a bounce
    webhook_retries: 3,             // retries after the first attempt
    webhook_backoff_ms: 100,        // 100, 200, 400 ...
    webhook_timeout_ms: 2000,
  };
}

function createDouble() {
  let S; // state
  let gen = 0; // bumps on reset so in-flight webhook retries die quietly

  function reset() {
    gen++;
    S = {
      seq: 0,
      clockOffset: 0,
      config: defaultConfig(),
      mailboxes: new Map(),
      emails: new Map(),
      idem: new Map(),          // idempotency_key -> {email_id, mailbox_id, created_ms, attempts, emails_created}
      replyHashes: new Map(),   // mailbox|email|sha -> ms
      pendingApprovals: new Map(), // address -> code
      keys: new Map(),          // key -> scopes[]
      acceptAny: true,
      faults: {},
      faultCounter: 0,
      webhook: { url: null, secret: DEFAULT_SECRET, alt_spelling: false, alt_fields: false, mailbox_id: null },
      deliveries: [],
      requests: [],
    };
  }
  reset();

  const now = () => Date.now() + S.clockOffset;
  const iso = (ms) => new Date(ms).toISOString();
  const nextId = (prefix) => `${prefix}_${(++S.seq).toString(36).padStart(4, '0')}${crypto.randomBytes(4).toString('hex')}`;

  // ---------------------------------------------------------------- helpers
  function json(res, status, body, headers) {
    const text = JSON.stringify(body);
    const h = Object.assign({ 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }, headers || {});
    if (res.__resetPending) { // reset_every: status line + part of the headers, then kill the socket
      const sock = res.socket;
      res.__logStatus(status, 'reset');
      try { sock.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] || ''}\r\nContent-Type: applic`); } catch (_) { /* ignore */ }
      setTimeout(() => sock.destroy(), 5);
      return;
    }
    res.writeHead(status, h);
    res.end(text);
  }
  const err = (res, status, msg, extra) => json(res, status, Object.assign({ error: msg }, extra || {}));

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  function emailSummary(e) {
    return {
      id: e.id, from: e.from, to: e.to.slice(), subject: e.subject, direction: e.direction,
      status: e.status, received_at: iso(e.created_ms), thread_id: e.thread_id,
      has_attachments: e.attachments.length > 0,
      delivered_at: e.delivered_ms ? iso(e.delivered_ms) : null,
      bounced_at: e.bounced_ms ? iso(e.bounced_ms) : null,
      bounce_type: e.bounce_type || null,
    };
  }
  function emailFull(e) {
    return Object.assign(emailSummary(e), {
      cc: e.cc.slice(),
      markdown: e.markdown,
      attachments: e.attachments.map((a) => ({ name: a.name, size: Buffer.from(a.content_base64, 'base64').length, content_type: a.content_type })),
      approved_at: e.approved_ms ? iso(e.approved_ms) : null,
      approved_by: e.approved_by || null,
      tags: {},
    });
  }
  function mailboxView(m) {
    return {
      id: m.id, tenant_id: m.tenant_id, address: m.address, display_name: m.display_name,
      oversight_mode: m.oversight_mode, auto_cc: null, auto_bcc: null, forward_inbound: 0,
      webhook_url: m.webhook_url, oversight_webhook_url: null, signature_block: null,
      created_at: m.created_ms, is_active: 1,
    };
  }

  // ---------------------------------------------------------------- webhooks
  const EVENT_ALT = {
    'oversight.approved': 'email.approved', 'oversight.rejected': 'email.rejected',
    'message.delivered': 'email.delivered', 'message.received': 'email.received',
    'message.bounced': 'email.bounced',
  };
  function fireEvent(event, e, extra) {
    const mb = S.mailboxes.get(e.mailbox_id);
    const targets = [];
    if (mb && mb.webhook_url) targets.push(mb.webhook_url);
    const w = S.webhook;
    if (w.url && (!w.mailbox_id || w.mailbox_id === e.mailbox_id) && !targets.includes(w.url)) targets.push(w.url);
    if (!targets.length) return;
    const name = w.alt_spelling ? (EVENT_ALT[event] || event) : event;
    const data = {
      email_id: e.id, mailbox_id: e.mailbox_id, thread_id: e.thread_id,
      from: e.from, to: e.to.slice(), subject: e.subject, direction: e.direction,
      has_attachments: e.attachments.length > 0,
    };
    if (w.alt_fields) { data.message_id = e.id; delete data.email_id; }
    Object.assign(data, extra || {});
    const payload = { timestamp: iso(now()), data };
    if (w.alt_fields) payload.event_type = name; else payload.event = name;
    const ordered = w.alt_fields ? { event_type: name, timestamp: payload.timestamp, data } : { event: name, timestamp: payload.timestamp, data };
    const body = JSON.stringify(ordered);
    const sig = 'sha256=' + crypto.createHmac('sha256', w.secret || DEFAULT_SECRET).update(body).digest('hex');
    for (const url of targets) {
      const d = {
        id: nextId('whd'), event: name, url, email_id: e.id, status: 'pending', attempts: 0,
        response_status: null, errors: [], created_at: iso(now()), last_attempt_at: null,
        signature: sig, body,
      };
      S.deliveries.push(d);
      attemptDelivery(d, gen);
    }
  }
  function attemptDelivery(d, g) {
    if (g !== gen) return;
    d.attempts++;
    d.last_attempt_at = iso(now());
    let u;
    try { u = new URL(d.url); } catch (_) { d.status = 'failed'; d.errors.push('bad url'); return; }
    const mod = u.protocol === 'https:' ? https : http;
    let settled = false;
    const done = (ok, status, errText) => {
      if (settled || g !== gen) return;
      settled = true;
      d.response_status = status;
      if (ok) { d.status = 'delivered'; return; }
      d.errors.push(errText || `HTTP ${status}`);
      if (d.attempts > S.config.webhook_retries) { d.status = 'failed'; return; }
      const delay = S.config.webhook_backoff_ms * Math.pow(2, d.attempts - 1);
      setTimeout(() => attemptDelivery(d, g), delay).unref();
    };
    const req = mod.request(u, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(d.body),
        'X-MultiMail-Signature': d.signature, 'User-Agent': 'MultiMail-Webhooks/double',
      },
      timeout: S.config.webhook_timeout_ms,
    }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode >= 200 && res.statusCode < 300, res.statusCode));
      res.on('error', (e) => done(false, res.statusCode, String(e.message)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done(false, null, String(e.message)));
    req.end(d.body);
  }

  // ---------------------------------------------------------------- auth
  function authScopes(req) {
    const h = req.headers.authorization || '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return { error: 'Missing or malformed Authorization header (expected "Bearer mm_live_...")' };
    const key = m[1];
    if (S.keys.has(key)) { const k = S.keys.get(key); return { key, scopes: k }; }
    if (S.acceptAny && key.startsWith('mm_live_') && key.length > 'mm_live_'.length) return { key, scopes: ALL_SCOPES };
    return { error: 'Invalid API key' };
  }

  // ---------------------------------------------------------------- validation
  function checkAddrList(v, name, min, max) {
    if (!Array.isArray(v)) return `${name} must be an array of email addresses`;
    if (v.length < min) return `${name} must contain at least ${min} address${min === 1 ? '' : 'es'}`;
    if (v.length > max) return `${name} may contain at most ${max} addresses`;
    for (const a of v) if (typeof a !== 'string' || !EMAIL_RE.test(a)) return `${name} contains an invalid email address: ${JSON.stringify(a)}`;
    return null;
  }
  function checkAttachments(v) {
    if (!Array.isArray(v)) return 'attachments must be an array';
    for (const a of v) {
      if (!a || typeof a !== 'object') return 'attachments items must be objects';
      for (const f of ['name', 'content_base64', 'content_type']) if (typeof a[f] !== 'string') return `attachments[].${f} is required and must be a string`;
    }
    return null;
  }
  function validateSend(b) {
    if (!b || typeof b !== 'object' || Array.isArray(b)) return 'body must be a JSON object';
    let e = checkAddrList(b.to, 'to', 1, 50); if (e) return e;
    if (typeof b.subject !== 'string') return 'subject is required and must be a string';
    if (b.subject.length > 998) return 'subject exceeds 998 characters';
    if (typeof b.markdown !== 'string') return 'markdown is required and must be a string';
    if (b.markdown.length > 262144) return 'markdown exceeds 262144 characters';
    return validateCommon(b);
  }
  function validateCommon(b) {
    let e;
    if (b.cc !== undefined && (e = checkAddrList(b.cc, 'cc', 0, 50))) return e;
    if (b.bcc !== undefined && (e = checkAddrList(b.bcc, 'bcc', 0, 50))) return e;
    if (b.attachments !== undefined && (e = checkAttachments(b.attachments))) return e;
    if (b.idempotency_key !== undefined && typeof b.idempotency_key !== 'string') return 'idempotency_key must be a string';
    if (b.send_at !== undefined && (typeof b.send_at !== 'string' || !/Z$/.test(b.send_at) || isNaN(Date.parse(b.send_at)))) return 'send_at must be an ISO 8601 UTC timestamp ending with Z';
    if (b.gate_timing !== undefined && !['gate_first', 'schedule_first'].includes(b.gate_timing)) return 'gate_timing must be gate_first or schedule_first';
    return null;
  }

  // ---------------------------------------------------------------- email creation
  function idemLookup(key) {
    if (typeof key !== 'string') return null;
    const r = S.idem.get(key);
    if (r && now() - r.created_ms > DAY_MS) { // expired: start over, keep counters
      r.email_id = null; r.created_ms = null;
    }
    return r || null;
  }
  function idemRecordAttempt(key) {
    if (typeof key !== 'string') return null;
    let r = S.idem.get(key);
    if (!r) { r = { email_id: null, mailbox_id: null, created_ms: null, attempts: 0, emails_created: 0 }; S.idem.set(key, r); }
    r.attempts++;
    return r;
  }
  function createOutbound(mb, fields, res) {
    const e = {
      id: nextId('em'), mailbox_id: mb.id, direction: 'outbound', from: mb.address,
      to: fields.to, cc: fields.cc || [], bcc: fields.bcc || [], subject: fields.subject,
      markdown: fields.markdown, attachments: fields.attachments || [], status: 'pending_scan',
      thread_id: fields.thread_id || nextId('thr'), created_ms: now(), seq: S.seq,
      idempotency_key: fields.idempotency_key || null, send_at: fields.send_at || null,
      in_reply_to: fields.in_reply_to || null,
      delivered_ms: null, bounced_ms: null, bounce_type: null, approved_ms: null, approved_by: null,
      cancelled_ms: null, reject_reason: null,
    };
    S.emails.set(e.id, e);
    // The scan is instantaneous: once the 202 is on the wire the email waits for a human
    // (mailboxes are gated_send). pending_scan is not in the status enum, so nothing
    // readable through the API ever shows it.
    const advance = () => { if (e.status === 'pending_scan') e.status = 'pending_send_approval'; };
    res.once('finish', advance); res.once('close', advance);
    return e;
  }

  // ---------------------------------------------------------------- API handlers
  const routes = [
    ['POST', /^\/v1\/mailboxes$/, 'admin', createMailbox],
    ['POST', /^\/v1\/mailboxes\/([^/]+)\/send$/, 'send', sendEmail],
    ['POST', /^\/v1\/mailboxes\/([^/]+)\/reply\/([^/]+)$/, 'send', replyEmail],
    ['GET', /^\/v1\/mailboxes\/([^/]+)\/emails$/, 'read', listEmails],
    ['GET', /^\/v1\/mailboxes\/([^/]+)\/emails\/([^/]+)$/, 'read', getEmail],
    ['POST', /^\/v1\/mailboxes\/([^/]+)\/emails\/([^/]+)\/cancel$/, 'send', cancelEmail],
    ['GET', /^\/v1\/mailboxes\/([^/]+)\/threads\/([^/]+)$/, 'read', getThread],
    ['GET', /^\/v1\/oversight\/pending$/, 'oversight', listPending],
    ['POST', /^\/v1\/oversight\/decide$/, 'oversight', decide],
  ];

  function createMailbox(ctx) {
    const b = ctx.body;
    if (!b || typeof b !== 'object' || Array.isArray(b)) return err(ctx.res, 400, 'body must be a JSON object');
    if (typeof b.address_local !== 'string' || !b.address_local) return err(ctx.res, 400, 'address_local is required');
    const local = b.address_local.trim().toLowerCase();
    let address;
    if (local.includes('@')) {
      if (!EMAIL_RE.test(local)) return err(ctx.res, 400, 'Invalid address format');
      address = local;
    } else {
      if (!/^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/.test(local)) return err(ctx.res, 400, 'Invalid address format');
      address = `${local}@${TENANT_DOMAIN}`;
    }
    if (b.display_name !== undefined && typeof b.display_name !== 'string') return err(ctx.res, 400, 'display_name must be a string');
    if (b.webhook_url !== undefined && b.webhook_url !== null) {
      if (typeof b.webhook_url !== 'string') return err(ctx.res, 400, 'webhook_url must be a string');
      try { new URL(b.webhook_url); } catch (_) { return err(ctx.res, 400, 'webhook_url must be a valid URL'); }
    }
    for (const m of S.mailboxes.values()) if (m.address === address) return err(ctx.res, 409, 'Address already in use');
    if (S.config.mailbox_approval) {
      const pending = S.pendingApprovals.get(address);
      if (b.approval_code === undefined || b.approval_code === null || b.approval_code === '') {
        const code = pending || `${rnd3()}-${rnd3()}`;
        S.pendingApprovals.set(address, code);
        return json(ctx.res, 202, { status: 'pending_approval', message: 'Approval requested \u2014 check oversight email for code' });
      }
      if (typeof b.approval_code !== 'string' || !pending || b.approval_code.trim().toUpperCase() !== pending) return err(ctx.res, 403, 'Invalid approval code');
      S.pendingApprovals.delete(address);
    }
    const m = {
      id: nextId('mbx'), tenant_id: 'ten_double', address, display_name: b.display_name || null,
      oversight_mode: 'gated_send', webhook_url: b.webhook_url || null, created_ms: now(),
    };
    S.mailboxes.set(m.id, m);
    return json(ctx.res, 201, mailboxView(m));
  }
  function rnd3() { const A = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; let s = ''; for (let i = 0; i < 3; i++) s += A[crypto.randomInt(A.length)]; return s; }

  function mailboxOr404(ctx, id) {
    const m = S.mailboxes.get(id);
    if (!m) { err(ctx.res, 404, 'Mailbox not found'); return null; }
    return m;
  }

  function sendEmail(ctx, mbId) {
    const b = ctx.body;
    const key = b && typeof b === 'object' ? b.idempotency_key : undefined;
    const rec = idemRecordAttempt(key);   // every send that reaches this handler counts
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    if (S.faults.status_for_send) {
      const code = S.faults.status_for_send;
      ctx.fault = 'status_for_send';
      const extra = code === 429 ? { 'Retry-After': String(S.faults.retry_after || 1) } : undefined;
      return json(ctx.res, code, { error: `injected status ${code}` }, extra);
    }
    const v = validateSend(b); if (v) return err(ctx.res, 400, v);
    if (mb.oversight_mode === 'read_only') return err(ctx.res, 403, 'Mailbox is in read_only mode');
    const prior = idemLookup(key);
    if (prior && prior.email_id) return json(ctx.res, 200, { id: prior.email_id, status: 'already_sent', idempotent: true });
    const e = createOutbound(mb, { to: b.to, cc: b.cc, bcc: b.bcc, subject: b.subject, markdown: b.markdown, attachments: b.attachments, idempotency_key: key, send_at: b.send_at }, ctx.res);
    if (rec) { rec.email_id = e.id; rec.mailbox_id = mb.id; rec.created_ms = now(); rec.emails_created++; }
    return json(ctx.res, 202, { id: e.id, status: 'pending_scan', thread_id: e.thread_id });
  }

  function replyEmail(ctx, mbId, emailId) {
    const b = ctx.body;
    const key = b && typeof b === 'object' ? b.idempotency_key : undefined;
    const rec = idemRecordAttempt(key);
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    if (!b || typeof b !== 'object' || Array.isArray(b)) return err(ctx.res, 400, 'body must be a JSON object');
    if (typeof b.markdown !== 'string') return err(ctx.res, 400, 'markdown is required and must be a string');
    if (b.markdown.length > 262144) return err(ctx.res, 400, 'markdown exceeds 262144 characters');
    const v = validateCommon(b); if (v) return err(ctx.res, 400, v);
    const orig = S.emails.get(emailId);
    if (!orig || orig.mailbox_id !== mb.id) return err(ctx.res, 404, 'Email not found');
    if (mb.oversight_mode === 'read_only') return err(ctx.res, 403, 'Mailbox is in read_only mode');
    const prior = idemLookup(key);
    if (prior && prior.email_id) return json(ctx.res, 200, { id: prior.email_id, status: 'already_sent', idempotent: true });
    const h = `${mb.id}|${orig.id}|${crypto.createHash('sha256').update(b.markdown).digest('hex')}`;
    const last = S.replyHashes.get(h);
    if (last !== undefined && now() - last < REPLY_DUP_WINDOW_MS) return err(ctx.res, 409, 'Duplicate reply detected (same content within 60s)');
    S.replyHashes.set(h, now());
    const to = orig.direction === 'inbound' ? [orig.from] : orig.to.slice();
    const subject = /^re:/i.test(orig.subject) ? orig.subject : `Re: ${orig.subject}`;
    const e = createOutbound(mb, { to, cc: b.cc, bcc: b.bcc, subject, markdown: b.markdown, attachments: b.attachments, idempotency_key: key, thread_id: orig.thread_id, in_reply_to: orig.id }, ctx.res);
    if (rec) { rec.email_id = e.id; rec.mailbox_id = mb.id; rec.created_ms = now(); rec.emails_created++; }
    return json(ctx.res, 202, { id: e.id, status: 'pending_scan', thread_id: e.thread_id });
  }

  function listEmails(ctx, mbId) {
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    const q = ctx.query;
    let limit = 20;
    if (q.has('limit')) {
      const s = q.get('limit');
      if (!/^\d+$/.test(s) || +s < 1 || +s > 100) return err(ctx.res, 400, 'limit must be an integer between 1 and 100');
      limit = +s;
    }
    let list = [...S.emails.values()].filter((e) => e.mailbox_id === mb.id).sort((a, b) => b.seq - a.seq);
    if (q.has('status')) list = list.filter((e) => e.status === q.get('status'));
    if (q.has('direction')) list = list.filter((e) => e.direction === q.get('direction'));
    if (q.has('sender')) list = list.filter((e) => e.from === q.get('sender'));
    if (q.has('subject_contains')) list = list.filter((e) => e.subject.toLowerCase().includes(q.get('subject_contains').toLowerCase()));
    if (q.has('has_attachments')) list = list.filter((e) => String(e.attachments.length > 0) === q.get('has_attachments'));
    if (q.has('since_id')) { const s = S.emails.get(q.get('since_id')); list = list.filter((e) => !s || e.seq > s.seq); }
    if (q.has('date_after')) { const t = Date.parse(q.get('date_after')); if (!isNaN(t)) list = list.filter((e) => e.created_ms > t); }
    if (q.has('date_before')) { const t = Date.parse(q.get('date_before')); if (!isNaN(t)) list = list.filter((e) => e.created_ms < t); }
    if (q.has('cursor') && q.get('cursor') !== '') {
      const c = Number(q.get('cursor'));
      if (!Number.isFinite(c)) return err(ctx.res, 400, 'invalid cursor');
      list = list.filter((e) => e.seq < c);
    }
    const page = list.slice(0, limit);
    const more = list.length > limit;
    return json(ctx.res, 200, { emails: page.map(emailSummary), cursor: more ? String(page[page.length - 1].seq) : null });
  }

  function getEmail(ctx, mbId, emailId) {
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    const e = S.emails.get(emailId);
    if (!e || e.mailbox_id !== mb.id) return err(ctx.res, 404, 'Email not found');
    if (e.status === 'unread') e.status = 'read';
    return json(ctx.res, 200, emailFull(e));
  }

  function cancelEmail(ctx, mbId, emailId) {
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    const e = S.emails.get(emailId);
    if (!e || e.mailbox_id !== mb.id) return err(ctx.res, 404, 'Email not found');
    if (e.status === 'cancelled') return json(ctx.res, 200, { id: e.id, status: 'cancelled' });
    if (!['pending_scan', 'pending_send_approval', 'pending_inbound_approval'].includes(e.status)) {
      return err(ctx.res, 409, `Email not in a cancellable state (status: ${e.status})`);
    }
    e.status = 'cancelled'; e.cancelled_ms = now();
    return json(ctx.res, 200, { id: e.id, status: 'cancelled' });
  }

  function getThread(ctx, mbId, threadId) {
    const mb = mailboxOr404(ctx, mbId); if (!mb) return;
    const list = [...S.emails.values()].filter((e) => e.mailbox_id === mb.id && e.thread_id === threadId).sort((a, b) => a.seq - b.seq);
    if (!list.length) return err(ctx.res, 404, 'Thread not found or no emails');
    const participants = [];
    for (const e of list) for (const a of [e.from, ...e.to, ...e.cc]) if (!participants.includes(a)) participants.push(a);
    const lastIn = list.filter((e) => e.direction === 'inbound').pop();
    const lastOut = list.filter((e) => e.direction === 'outbound').pop();
    return json(ctx.res, 200, {
      thread_id: threadId, message_count: list.length, participants,
      last_activity: iso(Math.max(...list.map((e) => e.created_ms))),
      has_unanswered_inbound: !!lastIn && (!lastOut || lastOut.seq < lastIn.seq),
      emails: list.map((e) => ({
        id: e.id, from: e.from, to: e.to.slice(), subject: e.subject, direction: e.direction,
        status: e.status, received_at: iso(e.created_ms), has_attachments: e.attachments.length > 0,
        delivered_at: e.delivered_ms ? iso(e.delivered_ms) : null, bounced_at: e.bounced_ms ? iso(e.bounced_ms) : null,
      })),
    });
  }

  function listPending(ctx) {
    const list = [...S.emails.values()].filter((e) => e.status === 'pending_send_approval' || e.status === 'pending_inbound_approval').sort((a, b) => a.seq - b.seq);
    return json(ctx.res, 200, {
      emails: list.map((e) => ({
        id: e.id, mailbox_id: e.mailbox_id, direction: e.direction, from: e.from, to: e.to.slice(),
        subject: e.subject, body_markdown: e.markdown, status: e.status, received_at: iso(e.created_ms),
      })),
    });
  }

  function decide(ctx) {
    const b = ctx.body;
    if (!b || typeof b !== 'object' || Array.isArray(b)) return err(ctx.res, 400, 'body must be a JSON object');
    if (typeof b.email_id !== 'string') return err(ctx.res, 400, 'email_id is required');
    if (b.action !== 'approve' && b.action !== 'reject') return err(ctx.res, 400, 'action must be approve or reject');
    if (b.reason !== undefined && typeof b.reason !== 'string') return err(ctx.res, 400, 'reason must be a string');
    const e = S.emails.get(b.email_id);
    if (!e) return err(ctx.res, 404, 'Email not found');
    if (e.status !== 'pending_send_approval' && e.status !== 'pending_inbound_approval') {
      return err(ctx.res, 404, `Email not found among pending emails (status: ${e.status})`);
    }
    const by = `oversight:${ctx.auth.key.slice(0, 12)}`;
    if (b.action === 'reject') {
      e.status = 'rejected'; e.reject_reason = b.reason || null; e.approved_by = null;
      fireEvent('oversight.rejected', e, b.reason ? { reason: b.reason } : undefined);
      return json(ctx.res, 200, { status: 'rejected' });
    }
    e.approved_ms = now(); e.approved_by = by;
    if (e.direction === 'inbound') {
      e.status = 'unread';
      fireEvent('oversight.approved', e);
      return json(ctx.res, 200, { status: 'approved' });
    }
    e.status = S.config.delivered_status; e.delivered_ms = now();
    e.postmark_message_id = crypto.randomUUID();
    fireEvent('oversight.approved', e);
    fireEvent('message.delivered', e, { delivered_at: iso(e.delivered_ms) });
    return json(ctx.res, 200, { status: 'approved_and_sent', postmark_message_id: e.postmark_message_id });
  }

  // ---------------------------------------------------------------- control API
  function publicState() {
    const idempotency = {};
    for (const [k, r] of S.idem) idempotency[k] = { attempts: r.attempts, emails_created: r.emails_created, email_id: r.email_id, mailbox_id: r.mailbox_id, created_at: r.created_ms ? iso(r.created_ms) : null };
    return {
      now: iso(now()),
      config: S.config,
      faults: S.faults,
      accept_any_mm_live_key: S.acceptAny,
      keys: Object.fromEntries(S.keys),
      webhook: Object.assign({}, S.webhook),
      mailboxes: [...S.mailboxes.values()].map(mailboxView),
      pending_approvals: Object.fromEntries(S.pendingApprovals),
      emails: [...S.emails.values()].sort((a, b) => a.seq - b.seq).map((e) => Object.assign(emailFull(e), {
        mailbox_id: e.mailbox_id, bcc: e.bcc.slice(), idempotency_key: e.idempotency_key, in_reply_to: e.in_reply_to,
        send_at: e.send_at, reject_reason: e.reject_reason,
      })),
      idempotency,
      webhook_deliveries: S.deliveries.map((d) => Object.assign({}, d, { errors: d.errors.slice() })),
    };
  }

  async function control(req, res, path, query) {
    let body = {};
    if (req.method === 'POST') {
      const raw = await readBody(req);
      if (raw.length) { try { body = JSON.parse(raw.toString('utf8')); } catch (_) { return err(res, 400, 'invalid JSON'); } }
      if (!body || typeof body !== 'object' || Array.isArray(body)) return err(res, 400, 'body must be a JSON object');
    }
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'POST /__control/reset': reset(); return json(res, 200, { ok: true });
      case 'GET /__control/state': return json(res, 200, publicState());
      case 'GET /__control/requests': {
        const since = Number(query.get('since') || 0);
        return json(res, 200, { requests: S.requests.filter((r) => r.seq > since) });
      }
      case 'POST /__control/faults': {
        const f = {};
        const int = (v) => Number.isInteger(v) && v > 0;
        if (body.fail_every !== undefined && body.fail_every !== null && body.fail_every !== 0) { if (!int(body.fail_every)) return err(res, 400, 'fail_every must be a positive integer'); f.fail_every = body.fail_every; }
        if (body.rate_limit) {
          const r = body.rate_limit;
          if (!int(r.every)) return err(res, 400, 'rate_limit.every must be a positive integer');
          f.rate_limit = { every: r.every, retry_after: Number.isInteger(r.retry_after) && r.retry_after >= 0 ? r.retry_after : 1, kind: ['rate', 'quota', 'warmup'].includes(r.kind) ? r.kind : 'rate' };
        }
        if (body.slow_ms) { if (!Number.isInteger(body.slow_ms) || body.slow_ms < 0) return err(res, 400, 'slow_ms must be a non-negative integer'); f.slow_ms = body.slow_ms; }
        if (body.reset_every) { if (!int(body.reset_every)) return err(res, 400, 'reset_every must be a positive integer'); f.reset_every = body.reset_every; }
        if (body.down) f.down = true;
        if (body.status_for_send) {
          if (!Number.isInteger(body.status_for_send) || body.status_for_send < 100 || body.status_for_send > 599) return err(res, 400, 'status_for_send must be an HTTP status code');
          f.status_for_send = body.status_for_send;
          if (Number.isInteger(body.retry_after)) f.retry_after = body.retry_after;
        }
        if (body.bad_shape) f.bad_shape = true;
        S.faults = f; S.faultCounter = 0;
        return json(res, 200, { faults: f });
      }
      case 'POST /__control/keys': {
        if (body.accept_any !== undefined) S.acceptAny = !!body.accept_any;
        const list = Array.isArray(body.keys) ? body.keys : (body.key ? [body] : []);
        for (const k of list) {
          if (typeof k.key !== 'string' || !k.key) return err(res, 400, 'key must be a non-empty string');
          if (k.revoke) { S.keys.set(k.key, null); continue; }
          const scopes = k.scopes === undefined ? ALL_SCOPES : k.scopes;
          if (!Array.isArray(scopes) || scopes.some((s) => !ALL_SCOPES.includes(s))) return err(res, 400, `scopes must be a subset of ${ALL_SCOPES.join(',')}`);
          S.keys.set(k.key, scopes.slice());
        }
        return json(res, 200, { accept_any: S.acceptAny, keys: Object.fromEntries(S.keys) });
      }
      case 'POST /__control/webhook': {
        if (body.url !== undefined && body.url !== null) { try { new URL(body.url); } catch (_) { return err(res, 400, 'url must be a valid URL'); } }
        S.webhook = {
          url: body.url || null,
          secret: typeof body.secret === 'string' && body.secret ? body.secret : DEFAULT_SECRET,
          alt_spelling: !!body.alt_spelling, alt_fields: !!body.alt_fields,
          mailbox_id: body.mailbox_id || null,
        };
        return json(res, 200, { webhook: S.webhook });
      }
      case 'POST /__control/config': {
        const c = S.config;
        if (body.mailbox_approval !== undefined) c.mailbox_approval = !!body.mailbox_approval;
        for (const k of ['delivered_status', 'bounced_status']) {
          if (body[k] !== undefined) { if (!STATUS_ENUM.includes(body[k])) return err(res, 400, `${k} must be one of ${STATUS_ENUM.join(',')}`); c[k] = body[k]; }
        }
        for (const k of ['webhook_retries', 'webhook_backoff_ms', 'webhook_timeout_ms']) {
          if (body[k] !== undefined) { if (!Number.isInteger(body[k]) || body[k] < 0) return err(res, 400, `${k} must be a non-negative integer`); c[k] = body[k]; }
        }
        return json(res, 200, { config: c });
      }
      case 'POST /__control/clock': {
        if (!Number.isInteger(body.advance_ms)) return err(res, 400, 'advance_ms must be an integer');
        S.clockOffset += body.advance_ms;
        return json(res, 200, { now: iso(now()) });
      }
      case 'POST /__control/inbound': {
        let mb, parent = null;
        if (body.email_id) {
          parent = S.emails.get(body.email_id);
          if (!parent) return err(res, 404, 'email not found');
          mb = S.mailboxes.get(parent.mailbox_id);
        } else {
          mb = S.mailboxes.get(body.mailbox_id);
          if (!mb) return err(res, 404, 'give email_id (reply to it) or mailbox_id (new thread)');
        }
        const from = body.from || (parent ? (parent.direction === 'outbound' ? parent.to[0] : parent.from) : 'someone@example.com');
        const subject = body.subject || (parent ? (/^re:/i.test(parent.subject) ? parent.subject : `Re: ${parent.subject}`) : '(no subject)');
        const e = {
          id: nextId('em'), mailbox_id: mb.id, direction: 'inbound', from, to: [mb.address], cc: [], bcc: [],
          subject, markdown: typeof body.markdown === 'string' ? body.markdown : 'Thanks!', attachments: [],
          status: 'unread', thread_id: parent ? parent.thread_id : nextId('thr'), created_ms: now(), seq: S.seq,
          idempotency_key: null, send_at: null, in_reply_to: parent ? parent.id : null,
          delivered_ms: null, bounced_ms: null, bounce_type: null, approved_ms: null, approved_by: null, cancelled_ms: null, reject_reason: null,
        };
        S.emails.set(e.id, e);
        fireEvent('message.received', e);
        return json(res, 200, { email: emailFull(e), thread_id: e.thread_id });
      }
      case 'POST /__control/bounce': {
        const e = S.emails.get(body.email_id);
        if (!e) return err(res, 404, 'email not found');
        e.bounced_ms = now(); e.bounce_type = typeof body.bounce_type === 'string' ? body.bounce_type : 'HardBounce';
        e.status = S.config.bounced_status;
        fireEvent('message.bounced', e, { bounce_type: e.bounce_type, bounced_at: iso(e.bounced_ms) });
        return json(res, 200, { email: emailFull(e) });
      }
      default: return err(res, 404, `unknown control route ${route}`);
    }
  }

  // ---------------------------------------------------------------- dispatcher
  async function handle(req, res) {
    const u = new URL(req.url, 'http://double');
    const path = u.pathname;
    if (path.startsWith('/__control/')) return control(req, res, path, u.searchParams);

    const entry = { seq: S.requests.length + 1, at: iso(now()), method: req.method, path, query: u.search, status: null, fault: null };
    S.requests.push(entry);
    res.__logStatus = (status, fault) => { entry.status = status; if (fault) entry.fault = fault; };
    res.once('finish', () => { if (entry.status === null) entry.status = res.statusCode; });
    const ctx = { req, res, query: u.searchParams, body: null, auth: null, fault: null };

    const F = S.faults;
    if (F.down) { entry.fault = 'down'; entry.status = 0; req.socket.destroy(); return; }
    S.faultCounter++;
    const n = S.faultCounter;
    if (F.slow_ms) await new Promise((r) => setTimeout(r, F.slow_ms));
    // read the body before answering so the client is not cut off while still writing
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    if (F.fail_every && n % F.fail_every === 0) { entry.fault = 'fail_every'; return err(res, 500, 'injected internal error'); }
    if (F.rate_limit && n % F.rate_limit.every === 0) {
      entry.fault = 'rate_limit';
      const rl = F.rate_limit;
      const extra = rl.kind === 'quota' ? {} : rl.kind === 'warmup' ? { warmup_stage: 1, daily_sent: 10, daily_limit: 10, hint: 'New accounts warm up gradually; retry later.' } : {};
      const msg = rl.kind === 'quota' ? 'Monthly quota exceeded' : rl.kind === 'warmup' ? 'Daily warm-up limit reached' : 'Rate limit exceeded';
      return json(res, 429, Object.assign({ error: msg }, extra), { 'Retry-After': String(rl.retry_after) });
    }
    if (F.reset_every && n % F.reset_every === 0) { res.__resetPending = true; }

    const auth = authScopes(req);
    if (auth.error) return err(res, 401, auth.error);
    ctx.auth = auth;
    if (auth.scopes === null) return err(res, 401, 'API key revoked');

    let matched = null; let pathOk = false;
    for (const [m, re, scope, fn] of routes) {
      const mm = re.exec(path);
      if (!mm) continue;
      pathOk = true;
      if (m === req.method) { matched = { scope, fn, args: mm.slice(1).map(decodeURIComponent) }; break; }
    }
    if (!matched) return err(res, pathOk ? 405 : 404, pathOk ? 'Method not allowed' : 'Not found');
    if (!auth.scopes.includes(matched.scope)) return err(res, 403, `API key lacks the ${matched.scope} scope`);
    if (req.method === 'POST' && raw.length) {
      try { ctx.body = JSON.parse(raw.toString('utf8')); } catch (_) { return err(res, 400, 'Invalid JSON body'); }
    } else if (req.method === 'POST') ctx.body = {};
    if (F.bad_shape) { entry.fault = 'bad_shape'; return json(res, req.method === 'POST' && /\/send$/.test(path) ? 202 : 200, { id: 12345, status: 17, thread_id: false, emails: 'not-an-array' }); }
    await matched.fn(ctx, ...matched.args);
    if (ctx.fault) entry.fault = ctx.fault;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      try { if (!res.headersSent) err(res, 500, `double bug: ${e && e.message}`); else res.destroy(); } catch (_) { /* ignore */ }
      process.stderr.write(`double: ${e && e.stack}\n`);
    });
  });
  server.keepAliveTimeout = 30000;
  server.headersTimeout = 35000;

  return {
    server,
    reset,
    state: () => publicState(),
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host || '127.0.0.1', () => resolve(server.address().port));
      });
    },
    close() {
      gen++;
      return new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}

module.exports = { createDouble };

if (require.main === module) {
  const args = process.argv.slice(2);
  let port = 0; let host = '127.0.0.1';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--host') host = args[++i];
    else if (args[i] === '--help' || args[i] === '-h') { process.stdout.write('usage: node double.cjs --port N [--host 127.0.0.1]\n'); process.exit(0); }
    else { process.stderr.write(`double: unknown argument ${args[i]}\n`); process.exit(2); }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) { process.stderr.write('double: --port must be 0..65535\n'); process.exit(2); }
  const d = createDouble();
  d.listen(port, host).then((p) => {
    process.stdout.write(`listening ${p}\n`);
  }, (e) => { process.stderr.write(`double: cannot listen: ${e.message}\n`); process.exit(1); });
  const stop = () => { d.close().then(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
