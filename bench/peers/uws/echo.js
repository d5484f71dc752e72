// echo.js is the uWebSockets.js peer of gale's WebSocket benchmarks: it echoes every text
// or binary message at /ws/echo, as bench/peers/gorillaws does (ws-echo and ws-idle).
//
//   node echo.js PORT [deflate]
//
// It loads uWS's native addon directly and exits when the addon does not load: the
// package's pure-JavaScript fallback (built on the "ws" module) is a different server, and
// measuring it under uWS's name would be wrong. "deflate" enables permessage-deflate with
// a shared compressor and decompressor (no context takeover, like gale's default). uSockets
// sets SO_REUSEPORT, so several processes can share PORT (ws-idle at 100,000 connections).
// Idle timeout and automatic pings are off: idle connections cost only their state.
'use strict';

const path = require('path');
const dir = path.join(__dirname, 'node_modules', '@trufflesuite', 'uws-js-unofficial');
const addon = path.join(dir, 'binaries',
	`uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
let uws;
try {
	uws = require(addon);
} catch (e) {
	console.error(`uws peer: native addon ${addon} does not load: ${e.message}`);
	process.exit(1);
}
const version = require(path.join(dir, 'package.json')).version;

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
	console.error('usage: node echo.js PORT [deflate]');
	process.exit(2);
}
const deflate = process.argv[3] === 'deflate';

uws.App().ws('/ws/echo', {
	compression: deflate ? (uws.SHARED_COMPRESSOR | uws.SHARED_DECOMPRESSOR) : uws.DISABLED,
	maxPayloadLength: 1 << 20,
	maxBackpressure: 1 << 20,
	idleTimeout: 0,
	sendPingsAutomatically: false,
	message: (ws, msg, isBinary) => { ws.send(msg, isBinary, deflate); },
}).listen('127.0.0.1', port, (ls) => {
	if (!ls) {
		console.error(`uws peer: cannot listen on 127.0.0.1:${port}`);
		process.exit(1);
	}
	console.log(`uws ${version} echo on 127.0.0.1:${port}${deflate ? ' (permessage-deflate)' : ''}`);
});
