// A compressed frame sent by hand, for a server that may not have negotiated compression.
import { connect } from "node:net";
import { constants, deflateRawSync } from "node:zlib";

/**
 * Sends the upgrade by hand, offering permessage-deflate, then a text frame marked
 * compressed (RSV1) whose 1 KB inflate to 1 MiB; resolves with the close code it gets,
 * `"dropped"` when the connection ends without a close frame.
 */
export function compressedFrame(port: number): Promise<number | "dropped" | "no answer"> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("no answer");
    }, 5000);
    socket.on("connect", () =>
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
      ),
    );
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (!upgraded) {
        const end = received.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        received = received.subarray(end + 4);
        const deflated = deflateRawSync("a".repeat(1 << 20), {
          finishFlush: constants.Z_SYNC_FLUSH,
        });
        const payload = deflated.subarray(0, deflated.length - 4);
        const mask = Buffer.from([1, 2, 3, 4]);
        const masked = payload.map((byte, i) => byte ^ (mask[i % 4] as number));
        const head = Buffer.from([0xc1, 0x80 | 126, payload.length >> 8, payload.length & 255]);
        socket.write(Buffer.concat([head, mask, masked]));
      }
      // The server's close frame: opcode 8, its code in the first two bytes of the body
      // (after a 16-bit length when the reason is long).
      if (received.length >= 4 && ((received[0] as number) & 15) === 8) {
        const start = ((received[1] as number) & 127) === 126 ? 4 : 2;
        if (received.length < start + 2) return;
        clearTimeout(timer);
        socket.destroy();
        resolve(received.readUInt16BE(start));
      }
    });
    socket.on("error", () => {});
    // Closed without a close frame (Deno drops the connection).
    socket.on("close", () => {
      clearTimeout(timer);
      resolve("dropped");
    });
  });
}
