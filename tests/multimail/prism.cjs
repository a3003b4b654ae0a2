#!/usr/bin/env node
// Start a validating Prism proxy in front of the MultiMail double.
//
//   MULTIMAIL_OPENAPI=/path/to/openapi.json \
//     node prism.cjs --upstream http://127.0.0.1:DOUBLE_PORT [--port P] [--log FILE]
//
// Runs  prism proxy "$MULTIMAIL_OPENAPI" http://127.0.0.1:DOUBLE_PORT
//              --host 127.0.0.1 --port P --errors
// (P = 0 picks a free port), waits until Prism listens, then prints exactly one
// line "listening PORT" on stdout. Prism's own log goes to stderr (or --log FILE).
// SIGTERM/SIGINT stop Prism; the wrapper exits when Prism exits.
// `--upstream-port N` is a shorthand for --upstream http://127.0.0.1:N.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function prismEntry() {
  const pkgPath = require.resolve('@stoplight/prism-cli/package.json', { paths: [__dirname] });
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.prism;
  return { script: path.join(path.dirname(pkgPath), bin), version: pkg.version };
}

function prismArgs(spec, upstream, port) {
  return ['proxy', spec, upstream, '--host', '127.0.0.1', '--port', String(port), '--errors'];
}

// Start Prism; resolves {port, child, version, args, stop()} once it listens.
function startPrism({ spec, upstream, port = 0, onLog, timeoutMs = 60000 }) {
  if (!spec) return Promise.reject(new Error('MULTIMAIL_OPENAPI is not set (path to MultiMail openapi.json)'));
  if (!fs.existsSync(spec)) return Promise.reject(new Error(`OpenAPI file not found: ${spec}`));
  const { script, version } = prismEntry();
  const args = prismArgs(path.resolve(spec), upstream, port);
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: Object.assign({}, process.env, { NO_COLOR: '1', FORCE_COLOR: '0' }) });
  const log = onLog || (() => {});
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error(`prism did not start within ${timeoutMs} ms`)), timeoutMs);
    function fail(e) { if (done) return; done = true; clearTimeout(timer); try { child.kill('SIGKILL'); } catch (_) { /* gone */ } reject(e); }
    const onData = (chunk) => {
      const s = chunk.toString('utf8');
      log(s);
      if (done) return;
      buf += s;
      // eslint-disable-next-line no-control-regex
      const m = /Prism is listening on https?:\/\/[^\s:]+:(\d+)/.exec(buf.replace(/\x1b\[[0-9;]*m/g, ''));
      if (m) {
        done = true; clearTimeout(timer);
        const stop = () => new Promise((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          const k = setTimeout(() => { try { child.kill('SIGKILL'); } catch (_) { /* gone */ } }, 3000);
          child.once('exit', () => { clearTimeout(k); res(); });
          child.kill('SIGTERM');
        });
        resolve({ port: Number(m[1]), child, version, args: ['prism', ...args], stop });
      } else if (buf.length > 1 << 20) buf = buf.slice(-4096);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, sig) => fail(new Error(`prism exited early (code ${code}, signal ${sig})`)));
    child.once('error', fail);
  });
}

module.exports = { startPrism, prismEntry, prismArgs };

if (require.main === module) {
  const a = process.argv.slice(2);
  let upstream = null; let port = 0; let logFile = null;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--upstream') upstream = a[++i];
    else if (a[i] === '--upstream-port') upstream = `http://127.0.0.1:${a[++i]}`;
    else if (a[i] === '--port') port = Number(a[++i]);
    else if (a[i] === '--log') logFile = a[++i];
    else if (a[i] === '--version') { process.stdout.write(prismEntry().version + '\n'); process.exit(0); }
    else { process.stderr.write(`prism.cjs: unknown argument ${a[i]}\n`); process.exit(2); }
  }
  if (!upstream) { process.stderr.write('usage: MULTIMAIL_OPENAPI=spec.json node prism.cjs --upstream http://127.0.0.1:PORT [--port P] [--log FILE]\n'); process.exit(2); }
  const out = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : process.stderr;
  startPrism({ spec: process.env.MULTIMAIL_OPENAPI, upstream, port, onLog: (s) => out.write(s) }).then((p) => {
    process.stdout.write(`listening ${p.port}\n`);
    const stop = () => { p.stop().then(() => process.exit(0)); };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    p.child.once('exit', (code) => process.exit(code === null ? 1 : code));
  }, (e) => { process.stderr.write(`prism.cjs: ${e.message}\n`); process.exit(1); });
}
