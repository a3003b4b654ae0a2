#!/usr/bin/env node
// A stand-in CRM for the forward plugin's integration test: every request is
// checked with the Standard Webhooks reference library (npm standardwebhooks),
// not with code of ours, so a signature it accepts is one any receiver using
// the standard accepts.
//
//   CRM_SECRET=whsec_... node crm.cjs --record FILE [--fail-first N]
//
// Prints "listening PORT" once it listens on 127.0.0.1 (port 0: any free
// one). Answers a verified request 204 (or 500 while --fail-first is not used
// up, to make the sender retry) and a refused one 401. After each request it
// rewrites FILE with the counts and every message it took:
//   {"verified", "refused", "failed_on_purpose", "delivered": [{id, timestamp,
//    content_type, extra, idempotency_key, body}], "refusals": [reason],
//    "attempts": [{id, timestamp}] (every verified request)}
// Control, never verified: GET /__control gives the same JSON; POST /__control
// with {"fail_first": N}, {"secret": "..."}, {"retry_after": S} (the failures
// on purpose answer 503 with Retry-After: S) and/or {"max_age": S} (refuse a
// webhook-timestamp more than S seconds old, as a strict receiver would; the
// library alone allows five minutes) changes the behaviour.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const { Webhook } = require('standardwebhooks');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const record = arg('--record');
if (!record || !process.env.CRM_SECRET) {
  console.error('usage: CRM_SECRET=... node crm.cjs --record FILE [--fail-first N]');
  process.exit(2);
}
// A "whsec_" secret is decoded by the library; any other string is the key
// itself, as the forward plugin takes it.
function webhookFor(secret) {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
}
let wh = webhookFor(process.env.CRM_SECRET);
let failFirst = Number(arg('--fail-first', '0'));
let retryAfter = null;
let maxAge = null;
const state = {
  verified: 0, refused: 0, failed_on_purpose: 0, delivered: [], refusals: [], attempts: [],
};

function save() {
  const tmp = `${record}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 1));
  fs.renameSync(tmp, record);
}

function answer(res, status, body) {
  res.writeHead(status, body ? { 'Content-Type': 'application/json' } : {});
  res.end(body || '');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    if (req.url === '/__control') {
      if (req.method === 'POST') {
        const c = JSON.parse(raw || '{}');
        if (c.fail_first !== undefined) failFirst = Number(c.fail_first);
        if (c.secret !== undefined) wh = webhookFor(c.secret);
        if (c.retry_after !== undefined) retryAfter = c.retry_after;
        if (c.max_age !== undefined) maxAge = c.max_age;
      }
      return answer(res, 200, JSON.stringify(state));
    }
    let verified = false;
    try {
      // The raw body as received: verify() signs exactly these bytes.
      wh.verify(raw, req.headers);
      const age = Date.now() / 1000 - Number(req.headers['webhook-timestamp']);
      if (maxAge !== null && age > maxAge) throw new Error(`timestamp ${age.toFixed(1)} s old`);
      verified = true;
    } catch (e) {
      state.refused++;
      state.refusals.push(String(e.message));
    }
    if (!verified) {
      save();
      return answer(res, 401, JSON.stringify({ error: 'signature refused' }));
    }
    state.verified++;
    state.attempts.push({ id: req.headers['webhook-id'], timestamp: req.headers['webhook-timestamp'] });
    if (failFirst > 0) {
      failFirst--;
      state.failed_on_purpose++;
      save();
      if (retryAfter === null) return answer(res, 500, JSON.stringify({ error: 'failing on purpose' }));
      res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': String(retryAfter) });
      return res.end(JSON.stringify({ error: 'failing on purpose' }));
    }
    state.delivered.push({
      id: req.headers['webhook-id'],
      timestamp: req.headers['webhook-timestamp'],
      content_type: req.headers['content-type'],
      extra: req.headers['x-extra'] || null,
      idempotency_key: req.headers['idempotency-key'] || null,
      body: JSON.parse(raw),
    });
    save();
    answer(res, 204);
  });
});

server.listen(0, '127.0.0.1', () => {
  save();
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
