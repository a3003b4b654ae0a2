// Interop checks against livekit-server-sdk, LiveKit's own Node SDK.
// Prints "ok NAME" or "FAIL NAME" per check; run by tests/interop/livekit.sh.
'use strict';
const { AccessToken, WebhookReceiver } = require('livekit-server-sdk');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { AFTERCALL, PORT, TEST_DATA } = process.env;
const samples = path.join(TEST_DATA, 'livekit');
let failed = 0;
const check = (name, cond, detail) => {
  if (cond) console.log(`ok ${name}`);
  else { failed++; console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`); }
};
const b64sha = (buf) => crypto.createHash('sha256').update(buf).digest('base64');

async function post(body, token) {
  const res = await fetch(`http://127.0.0.1:${PORT}/webhooks/livekit`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/webhook+json', Authorization: token },
    body,
  });
  return res.status;
}

async function sdkToken(key, secret, body) {
  const at = new AccessToken(key, secret);
  at.sha256 = b64sha(body);
  return at.toJwt();
}

async function main() {
  // The SDK test vector: its hash is the one in LiveKit's own test.
  const vector = fs.readFileSync(path.join(samples, 'room_started.sdk-vector.json'));
  check('sdk vector hash', b64sha(vector) === 'CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI=');

  // Tokens made by the SDK (header {"alg":"HS256"}, its own claim order) are accepted.
  let tok = await sdkToken('abcdefg', 'abababa', vector);
  check('host accepts an SDK token for the sdk vector', (await post(vector, tok)) === 200);
  for (const f of fs.readdirSync(samples).filter((n) => n.endsWith('.json')).sort()) {
    const body = fs.readFileSync(path.join(samples, f));
    tok = await sdkToken('APIinterop', 'interop-secret-0123456789', body);
    check(`host accepts an SDK token for ${f}`, (await post(body, tok)) === 200);
    const bad = Buffer.from(body);
    bad[bad.length - 2] ^= 1;
    check(`host refuses an SDK token for a changed ${f}`, (await post(bad, tok)) === 401);
  }
  tok = await sdkToken('abcdefg', 'not-the-secret', vector);
  check('host refuses an SDK token with the wrong secret', (await post(vector, tok)) === 401);

  // Tokens made by `aftercall sign` pass the SDK's WebhookReceiver.
  const receiver = new WebhookReceiver('abcdefg', 'abababa');
  for (const f of fs.readdirSync(samples).filter((n) => n.endsWith('.json')).sort()) {
    const file = path.join(samples, f);
    const body = fs.readFileSync(file, 'utf8');
    const ours = execFileSync(AFTERCALL, ['sign', '--key', 'abcdefg', '--secret', 'abababa', file])
      .toString().trim();
    try {
      const ev = await receiver.receive(body, ours);
      check(`WebhookReceiver accepts aftercall sign for ${f}`, ev.event === JSON.parse(body).event);
    } catch (e) {
      check(`WebhookReceiver accepts aftercall sign for ${f}`, false, e.message);
    }
    try {
      await receiver.receive(body + ' ', ours);
      check(`WebhookReceiver refuses a changed body for ${f}`, false);
    } catch (e) {
      check(`WebhookReceiver refuses a changed body for ${f}`, true);
    }
    // Header and claims exactly as LiveKit server writes them.
    const [h, c] = ours.split('.').map((s) => Buffer.from(s, 'base64url').toString());
    check(`header of ${f} is LiveKit server's`, h === '{"alg":"HS256","typ":"JWT"}', h);
    check(`claim order of ${f} is LiveKit server's`,
      JSON.stringify(Object.keys(JSON.parse(c))) === '["iss","exp","nbf","iat","sha256"]', c);
  }
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  console.log(`FAIL unexpected error: ${e.stack}`);
  process.exit(1);
});
