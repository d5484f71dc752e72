# A python3-websockets client for websocket/interop_test.go: it connects to the URL in
# argv[1] offering permessage-deflate with the parameters in the JSON object argv[2],
# sends messages that the server must echo, checks the echoes, pings, and closes.
import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


async def main(url, params):
    ext = ClientPerMessageDeflateFactory(**json.loads(params))
    async with websockets.connect(url, extensions=[ext], compression=None, max_size=None) as ws:
        print("EXT", ws.response_headers.get("Sec-WebSocket-Extensions"), flush=True)
        msgs = ["Hello", "Hello", "x" * 100000, bytes(range(256)) * 300, "", "\u20ac uro \U0001F600",
                "abc" * 400, "Hello"]
        for m in msgs:
            await ws.send(m)
            got = await ws.recv()
            if got != m:
                raise SystemExit("echo mismatch for message of %d" % len(m))
        await ws.send(["frag", "mented ", "text"])
        if await ws.recv() != "fragmented text":
            raise SystemExit("fragmented echo mismatch")
        pong = await ws.ping(b"pp")
        await asyncio.wait_for(pong, 5)
        await ws.close(1000, "done")
        print("CLOSE", ws.close_code, ws.close_reason, flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2]))
