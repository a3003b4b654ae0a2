#!/usr/bin/env node
// Posts a voice agent's end-of-session summary to aftercall, signed with the
// LiveKit API key and secret the agent already holds: a LiveKit-style JWT
// whose sha256 claim covers the exact body bytes (the same scheme LiveKit
// uses for its webhooks), made with LiveKit's own SDK.
//
//   AFTERCALL_URL=https://aftercall.example.com \
//   LIVEKIT_API_KEY=APIxxx LIVEKIT_API_SECRET=... \
//   node post_summary.cjs summary.json
//
// summary.json: {"room": "...", "room_sid": "RM_...", "participant": "...",
//                "template": "summary", "summary": "...", "data": {...}}
// Prints aftercall's answer; exits 1 unless it is a 2xx.
'use strict';
const { AccessToken } = require('livekit-server-sdk');
const crypto = require('node:crypto');
const fs = require('node:fs');

async function main() {
  const [file] = process.argv.slice(2);
  const { AFTERCALL_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET } = process.env;
  if (!file || !AFTERCALL_URL || !LIVEKIT_API_KEY || !LIVEKIT_API_SECRET) {
    console.error('usage: AFTERCALL_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... node post_summary.cjs FILE');
    process.exit(2);
  }
  const body = fs.readFileSync(file);
  const at = new AccessToken(LIVEKIT_API_KEY, LIVEKIT_API_SECRET, { ttl: '5m' });
  at.sha256 = crypto.createHash('sha256').update(body).digest('base64');
  const token = await at.toJwt();
  // Retried a few times, as a webhook sender would: a 2xx means committed.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${AFTERCALL_URL.replace(/\/$/, '')}/v1/transcripts`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body,
      });
      const text = await res.text();
      console.log(`${res.status} ${text}`);
      if (res.ok) return;
      if (res.status < 500 && res.status !== 429) process.exit(1);
    } catch (e) {
      console.error(`attempt ${attempt}: ${e.message}`);
    }
    if (attempt === 5) process.exit(1);
    await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
}
main();
