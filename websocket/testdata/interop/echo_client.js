// A node (undici WebSocket, run with --experimental-websocket) client for
// websocket/interop_test.go: it connects to the URL in argv[2], sends messages that the
// server must echo, checks them and closes with 1000 "done"; it prints the negotiated
// extensions and the close event.
const url = process.argv[2];
const msgs = ["Hello", "Hello", "x".repeat(100000), new Uint8Array(70000).map((_, i) => i % 251), "", "\u20ac uro \u{1F600}"];
const ws = new WebSocket(url);
ws.binaryType = "arraybuffer";
let i = 0;
const fail = (why) => { console.log("FAIL " + why); process.exit(1); };
const same = (a, b) => {
  if (typeof b === "string") return a === b;
  const u = new Uint8Array(a);
  return u.length === b.length && u.every((v, k) => v === b[k]);
};
ws.onopen = () => { console.log("EXT " + ws.extensions); ws.send(msgs[0]); };
ws.onmessage = (ev) => {
  if (!same(ev.data, msgs[i])) fail("echo mismatch for message " + i);
  i++;
  if (i < msgs.length) ws.send(msgs[i]); else ws.close(1000, "done");
};
ws.onerror = (e) => fail("error " + (e.message || e.type));
ws.onclose = (ev) => { console.log("CLOSE " + ev.code + " " + ev.reason + " " + ev.wasClean); process.exit(i === msgs.length ? 0 : 1); };
setTimeout(() => fail("timeout"), 20000);
