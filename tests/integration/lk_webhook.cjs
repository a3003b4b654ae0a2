// Posts a body as LiveKit server would, signed by LiveKit's own SDK
// (AccessToken with the sha256 claim). Usage:
//   node lk_webhook.cjs URL KEY SECRET FILE   -> prints the HTTP status
'use strict';
const { AccessToken } = require('livekit-server-sdk');
const crypto = require('node:crypto');
const fs = require('node:fs');

(async () => {
  const [url, key, secret, file] = process.argv.slice(2);
  const body = fs.readFileSync(file);
  const at = new AccessToken(key, secret);
  at.sha256 = crypto.createHash('sha256').update(body).digest('base64');
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/webhook+json', Authorization: await at.toJwt() },
    body,
  });
  console.log(res.status);
})().catch((e) => {
  console.error(e.message);
  console.log('000');
});
