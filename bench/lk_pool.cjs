// Writes a pool of pre-signed LiveKit webhooks for bench/ingest.lua: one
// request per line, "TOKEN<TAB>BODY". Each body is the sample with its `id`
// replaced by a unique one (PREFIX-N), so no request of a run is a duplicate;
// each token is what LiveKit server (and `aftercall sign`) sends: an HS256
// JWT {"alg":"HS256","typ":"JWT"} over {"iss","exp","nbf","iat","sha256"},
// sha256 being the base64 SHA-256 of the raw body.
// Usage: node lk_pool.cjs COUNT KEY SECRET SAMPLE.json PREFIX OUT [TTL]
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');

const [count, key, secret, sample, prefix, out, ttlArg] = process.argv.slice(2);
if (!out) {
  console.error('usage: node lk_pool.cjs COUNT KEY SECRET SAMPLE.json PREFIX OUT [TTL]');
  process.exit(2);
}
const n = Number(count);
const ttl = Number(ttlArg || 3600);
const text = fs.readFileSync(sample, 'utf8').trim();
const oldId = JSON.parse(text).id;
if (!oldId || text.indexOf(JSON.stringify(oldId)) < 0 || /[\t\n]/.test(text)) {
  console.error(`${sample}: needs an "id" and no tab or newline`);
  process.exit(2);
}
const [before, after] = text.split(JSON.stringify(oldId), 2);
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const header = b64u('{"alg":"HS256","typ":"JWT"}');
const now = Math.floor(Date.now() / 1000);
const fd = fs.openSync(out, 'w');
let chunk = [];
for (let i = 0; i < n; i++) {
  const body = before + JSON.stringify(`${prefix}-${i}`) + after;
  const hash = crypto.createHash('sha256').update(body).digest('base64');
  const claims = `{"iss":${JSON.stringify(key)},"exp":${now + ttl},"nbf":${now},"iat":${now},"sha256":"${hash}"}`;
  const signing = `${header}.${b64u(claims)}`;
  const sig = crypto.createHmac('sha256', secret).update(signing).digest('base64url');
  chunk.push(`${signing}.${sig}\t${body}\n`);
  if (chunk.length === 4096) {
    fs.writeSync(fd, chunk.join(''));
    chunk = [];
  }
}
fs.writeSync(fd, chunk.join(''));
fs.closeSync(fd);
