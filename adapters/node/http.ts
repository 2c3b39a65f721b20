// Node's HTTP objects as the kit's WHATWG ones: headers, URLs, and responses written on a
// plain response or on a socket that was not upgraded.

import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { type Duplex, Readable } from "node:stream";
import type { AnyApp } from "../../src/adapter.ts";
import {
  type BroadcastEndpointOptions,
  handleBroadcastRequest,
  isLoopbackAddress,
  KeptRequest,
  type UpgradeRequest,
} from "../../src/adapter.ts";

export function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

export function requestUrl(path: string, host: string | undefined): string {
  try {
    return new URL(path, `http://${host ?? "localhost"}`).href;
  } catch {
    return new URL(path, "http://localhost").href;
  }
}

/** The upgrade request as the core sees it, kept as Node's parser read it until a handler asks. */
export function upgradeRequest(req: IncomingMessage): UpgradeRequest {
  return new KeptRequest(req.url ?? "/", req.rawHeaders.join("\n"));
}

export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

/** Writes a WHATWG `Response` as a raw HTTP response on a socket that was not upgraded. */
export async function refuseUpgrade(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") head += `${name}: ${value}\r\n`;
  });
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  if (!socket.destroyed) socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

export async function sendResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  if (response.body && headers["content-type"]?.startsWith("text/event-stream")) {
    res.writeHead(response.status, headers);
    res.flushHeaders();
    await streamBody(res, response.body);
    return;
  }
  // A body left unread (the caller was refused first) ends with the connection.
  if (!req.readableEnded) headers.connection = "close";
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

/**
 * Writes a streamed body (the fallback's events) as it comes, no faster than the client
 * reads: the stream keeps what waits, where the session sees it. The client going away
 * cancels the stream.
 */
async function streamBody(res: ServerResponse, body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  const gone = () => void reader.cancel().catch(() => {});
  res.once("close", gone);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          res.once("drain", resolve);
          res.once("close", resolve);
        });
      }
      if (res.destroyed) break;
    }
  } catch {
    // Cancelled or ended with an error: the response ends.
  } finally {
    res.off("close", gone);
    res.end();
  }
}

/** A Node request as a WHATWG one, its body streamed (POSTs). */
export function webRequest(req: IncomingMessage): Request {
  const post = req.method === "POST";
  return new Request(requestUrl(req.url ?? "/", req.headers.host), {
    method: req.method ?? "GET",
    headers: toHeaders(req.headers),
    ...(post ? { body: Readable.toWeb(req) as unknown as ReadableStream, duplex: "half" } : {}),
  } as RequestInit);
}

/**
 * The broadcast endpoint's answer to a Node request. The body streams: the endpoint reads
 * it only after it has checked who calls, and no further than the app's frame limit.
 */
export function answerBroadcast(
  app: AnyApp,
  req: IncomingMessage,
  options: BroadcastEndpointOptions,
): Promise<Response> {
  return handleBroadcastRequest(app, webRequest(req), {
    fromLoopback: isLoopbackAddress(req.socket.remoteAddress),
    options,
  });
}
