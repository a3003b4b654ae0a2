// node bench/idle.cjs PORT N: holds N keep-alive connections open to
// 127.0.0.1:PORT beside the load, as idle clients of a real host would be.
// Each asks GET /healthz every 4 s, so that no read timeout closes it.
// Prints "idle N" once all are connected; runs until killed.
'use strict';
const net = require('net');
const [port, n] = process.argv.slice(2).map(Number);
let open = 0;
for (let i = 0; i < n; i++) {
	const s = net.connect(port, '127.0.0.1', () => {
		if (++open === n) console.log(`idle ${n}`);
		const ask = () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
		ask();
		setInterval(ask, 4000);
	});
	s.on('data', () => {});
	s.on('error', (e) => { console.error(`idle: ${e.message}`); process.exit(1); });
	s.on('close', () => { console.error('idle: a connection was closed'); process.exit(1); });
}
