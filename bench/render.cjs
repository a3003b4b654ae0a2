// The reference: npm's mustache (the JavaScript implementation) rendering
// the same template, partials and context. Front matter is split off the
// way aftercall does it; the subject and the body are both rendered.
// Usage: node render.cjs TEMPLATES_DIR CONTEXT.json SECONDS
'use strict';
const Mustache = require('mustache');
const fs = require('node:fs');
const path = require('node:path');

const [dir, ctxFile, seconds] = process.argv.slice(2);
const split = (text) => {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n([\s\S]*)$/.exec(text);
  return m ? { front: m[1], body: m[2] } : { front: '', body: text };
};
const partials = {};
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.md'))) {
  partials[f.slice(0, -3)] = split(fs.readFileSync(path.join(dir, f), 'utf8')).body;
}
const { front, body } = split(fs.readFileSync(path.join(dir, 'summary.md'), 'utf8'));
const subject = JSON.parse(/^subject: (.*)$/m.exec(front)[1]);
const view = JSON.parse(fs.readFileSync(ctxFile, 'utf8'));

let n = 0;
let bytes = 0;
const start = process.hrtime.bigint();
const end = start + BigInt(Math.round(Number(seconds) * 1e9));
while (process.hrtime.bigint() < end) {
  for (let i = 0; i < 1000; i++) {
    const s = Mustache.render(subject, view, partials);
    const b = Mustache.render(body, view, partials);
    bytes += s.length + b.length;
  }
  n += 1000;
}
const took = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`renders_per_second ${Math.round(n / took)}`);
console.log(`bytes_per_render ${Math.round(bytes / n)}`);
