// The baseline of bench/ingest.sh: LiveKit's own Node receiver, as its docs
// show it — livekit-server-sdk's WebhookReceiver in a node:http server. It
// verifies each webhook (JWT, issuer, exp/nbf, body SHA-256) and parses it,
// answers 200 {"status":"accepted"} (401 when verification fails), and
// stores nothing. One process, one event loop.
// Usage: node node_receiver.cjs KEY SECRET [PORT]  (prints "listening PORT")
'use strict';
const http = require('node:http');
const { WebhookReceiver } = require('livekit-server-sdk');

const [key, secret, port] = process.argv.slice(2);
const receiver = new WebhookReceiver(key, secret);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      await receiver.receive(body, req.headers.authorization);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"accepted"}');
    } catch (e) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: e.message }));
    }
  });
});
server.listen(Number(port || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
