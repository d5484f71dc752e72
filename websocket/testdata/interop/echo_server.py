# A python3-websockets echo server for websocket/interop_test.go: it listens on
# 127.0.0.1 on a free port, accepts permessage-deflate with the parameters in the JSON
# object argv[1], prints "PORT <n>", echoes every message and exits after one connection.
import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def main(params):
    done = asyncio.get_running_loop().create_future()

    async def echo(ws):
        try:
            async for m in ws:
                await ws.send(m)
        finally:
            print("CLOSE", ws.close_code, ws.close_reason, flush=True)
            done.set_result(None)

    ext = ServerPerMessageDeflateFactory(**json.loads(params))
    async with websockets.serve(echo, "127.0.0.1", 0, extensions=[ext], compression=None, max_size=None) as srv:
        print("PORT", srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.wait_for(done, 30)


asyncio.run(main(sys.argv[1]))
