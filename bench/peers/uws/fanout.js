// fanout.js is the uWebSockets.js pub/sub peer of gale's ws-fanout benchmarks: every
// client of a path under /ws/fanout/ is subscribed to the topic named by the path, and a
// message from one client is published to the others (uWS's ws.publish leaves out the
// sender), as gale's `pubsub: { topic: path }` and bench/peers/gohttp's hub do.
//
//   node fanout.js PORT
//
// One process: uWS keeps topics per App, in one thread, so processes sharing a port
// would each hold part of a topic's subscribers and miss each other's messages. It
// loads the native addon directly (see echo.js). Idle timeout and pings are off, and
// backpressure is bounded like gale's default queue.
'use strict';

const path = require('path');
const dir = path.join(__dirname, 'node_modules', '@trufflesuite', 'uws-js-unofficial');
const addon = path.join(dir, 'binaries',
	`uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
let uws;
try {
	uws = require(addon);
} catch (e) {
	console.error(`uws hub peer: native addon ${addon} does not load: ${e.message}`);
	process.exit(1);
}
const version = require(path.join(dir, 'package.json')).version;

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
	console.error('usage: node fanout.js PORT');
	process.exit(2);
}

uws.App().ws('/ws/fanout/*', {
	compression: uws.DISABLED,
	maxPayloadLength: 64 << 10,
	maxBackpressure: 1 << 20,
	closeOnBackpressureLimit: false,
	idleTimeout: 0,
	sendPingsAutomatically: false,
	upgrade: (res, req, context) => {
		res.upgrade({ topic: req.getUrl() },
			req.getHeader('sec-websocket-key'),
			req.getHeader('sec-websocket-protocol'),
			req.getHeader('sec-websocket-extensions'),
			context);
	},
	open: (ws) => { ws.subscribe(ws.getUserData().topic); },
	message: (ws, msg, isBinary) => { ws.publish(ws.getUserData().topic, msg, isBinary); },
}).listen('127.0.0.1', port, (ls) => {
	if (!ls) {
		console.error(`uws hub peer: cannot listen on 127.0.0.1:${port}`);
		process.exit(1);
	}
	console.log(`uws ${version} pub/sub on 127.0.0.1:${port}`);
});
