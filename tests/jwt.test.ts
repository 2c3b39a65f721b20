// socketapi/jwt over real sockets: tokens signed with a secret, a public key and a JWKS
// served over HTTP on 127.0.0.1 (fetched again for a key id it does not know); every bad
// token refused with 401 and a fixed text that never repeats it; the expiry from `exp`;
// refreshes that extend, and those refused.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type NodeServer, serve } from "../adapters/node.ts";
import { SocketAPI } from "../src/index.ts";
import { type JwtOptions, jwtAuth, jwtVerifier, TokenError } from "../src/jwt.ts";
import { openClient, type WsClient } from "./helpers/ws-client.ts";

const SECRET = "a-secret-of-at-least-32-bytes-for-hs256!";
const servers: NodeServer[] = [];
const sockets: WsClient[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const now = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, secret = SECRET) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));
}

async function start(options: JwtOptions) {
  const app = new SocketAPI({
    ...jwtAuth({ ...options, state: (claims) => ({ user: String(claims.sub) }) }),
    userId: (connection) => connection.state.user,
  }).action("whoami", (_, ctx) => ctx.connection.state.user);
  const server = await serve(app, { port: 0, host: "127.0.0.1" });
  servers.push(server);
  return server;
}

const offer = (token: string) => [
  "socketapi",
  `socketapi.bearer.${Buffer.from(token).toString("base64url")}`,
];

/** The HTTP answer to an upgrade with `token`: its status and body. */
function refusalOf(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, offer(token));
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on("open", () => {
      ws.close();
      resolve({ status: 101, body: "" });
    });
    ws.on("error", () => {});
  });
}

async function open(url: string, token: string) {
  const socket = await openClient(url, {}, offer(token));
  sockets.push(socket);
  return socket;
}

describe("with a secret", () => {
  it("admits a valid token, makes the state from its claims, and expires the connection at exp", async () => {
    const server = await start({ secret: SECRET, issuer: "auth", audience: "chat" });
    const token = await hs256({ sub: "ada", iss: "auth", aud: "chat", exp: now() + 2 });
    const socket = await open(server.url, token);
    const expiry = await socket.next();
    expect(expiry.type).toBe("expiry");
    expect(expiry.expiresIn).toBeLessThanOrEqual(2000);
    expect((await socket.request({ type: "action", channel: "whoami" })).data).toBe("ada");
    expect(await socket.closed).toEqual({ code: 4001, reason: "Token expired" });
  }, 10_000);

  it("refuses every bad token with 401 and a text that never repeats it", async () => {
    const server = await start({ secret: SECRET, issuer: "auth", audience: "chat" });
    const good = { sub: "ada", iss: "auth", aud: "chat" };
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(
      JSON.stringify({ ...good, exp: now() + 60 }),
    ).toString("base64url")}.`;
    const cases: [string, string][] = [
      ["not.a.jwt", "Malformed token."],
      [await hs256({ ...good, exp: now() - 60 }), "Token expired."],
      [
        await hs256({ ...good, exp: now() + 60 }, "another-secret-of-at-least-32-bytes!!"),
        "Invalid token.",
      ],
      [unsigned, "Invalid token."],
      [
        await hs256({ ...good, aud: "other", exp: now() + 60 }),
        "Token refused: its claims do not match.",
      ],
      [
        await hs256({ ...good, iss: "mallory", exp: now() + 60 }),
        "Token refused: its claims do not match.",
      ],
      [await hs256({ ...good, exp: now() + 60, nbf: now() + 600 }), "Token not valid yet."],
      [await hs256(good), "Token refused: its claims do not match."], // no exp
    ];
    for (const [token, text] of cases) {
      const answer = await refusalOf(server.url, token);
      expect(answer, token).toEqual({ status: 401, body: text });
      expect(answer.body).not.toContain(token.slice(0, 20));
    }
    // No token at all.
    const missing = await new Promise<number>((resolve) => {
      const ws = new WebSocket(server.url);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("error", () => {});
    });
    expect(missing).toBe(401);
  });

  it("allows clocks apart by clockTolerance", async () => {
    const server = await start({ secret: SECRET, clockTolerance: 30 });
    const token = await hs256({ sub: "ada", exp: now() - 10 });
    expect((await refusalOf(server.url, token)).status).toBe(101);
  });

  it("extends with a refreshed token, refuses an expired one and one of another user", async () => {
    const server = await start({ secret: SECRET });
    const socket = await open(server.url, await hs256({ sub: "ada", exp: now() + 60 }));
    await socket.next();
    socket.send({ type: "refresh", token: await hs256({ sub: "ada", exp: now() + 3600 }), id: 1 });
    const refreshed = await socket.next();
    expect(refreshed).toMatchObject({ type: "refreshed", id: 1 });
    expect(refreshed.expiresIn).toBeGreaterThan(3500_000);
    socket.send({ type: "refresh", token: await hs256({ sub: "ada", exp: now() - 60 }), id: 2 });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "UNAUTHORIZED",
      message: "Token expired.",
      id: 2,
    });
    socket.send({
      type: "refresh",
      token: await hs256({ sub: "mallory", exp: now() + 60 }),
      id: 3,
    });
    expect(await socket.next()).toEqual({
      type: "error",
      code: "FORBIDDEN",
      message: "A refresh cannot change the user.",
      id: 3,
    });
  });
});

describe("with a public key and a JWKS", () => {
  let jwksServer: Server;
  let jwksUrl: string;
  const published: JWK[] = [];
  let fetches = 0;
  const keys = new Map<string, CryptoKey>();

  beforeAll(async () => {
    for (const kid of ["k1", "k2"]) {
      const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
      keys.set(kid, privateKey as CryptoKey);
      keys.set(`${kid}.public`, publicKey as CryptoKey);
    }
    published.push({
      ...(await exportJWK(keys.get("k1.public") as CryptoKey)),
      kid: "k1",
      alg: "ES256",
    });
    jwksServer = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise((resolve) => jwksServer.close(resolve)));

  const es256 = (kid: string, claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).sign(keys.get(kid) as CryptoKey);

  it("verifies against a PEM public key", async () => {
    const pem = await exportSPKI(keys.get("k1.public") as CryptoKey);
    const server = await start({ publicKey: pem, algorithms: ["ES256"] });
    const socket = await open(server.url, await es256("k1", { sub: "ada", exp: now() + 60 }));
    await socket.next();
    expect((await socket.request({ type: "action", channel: "whoami" })).data).toBe("ada");
    // Signed by another key: refused.
    expect(
      (await refusalOf(server.url, await es256("k2", { sub: "ada", exp: now() + 60 }))).status,
    ).toBe(401);
  });

  it("caches the JWKS, and fetches it again for a key id it does not know (a rotation)", async () => {
    const server = await start({ jwks: jwksUrl, jwksCooldown: 0 });
    fetches = 0;
    await open(server.url, await es256("k1", { sub: "ada", exp: now() + 60 }));
    await open(server.url, await es256("k1", { sub: "grace", exp: now() + 60 }));
    expect(fetches).toBe(1);
    // Not published yet: refused, after one more fetch.
    expect(
      (await refusalOf(server.url, await es256("k2", { sub: "lin", exp: now() + 60 }))).status,
    ).toBe(401);
    expect(fetches).toBe(2);
    published.push({
      ...(await exportJWK(keys.get("k2.public") as CryptoKey)),
      kid: "k2",
      alg: "ES256",
    });
    await open(server.url, await es256("k2", { sub: "lin", exp: now() + 60 }));
    expect(fetches).toBe(3);
  });
});

describe("a JWKS that cannot be fetched", () => {
  it("is the server's fault (500, which clients retry), not a refused token (401)", async () => {
    const unreachable = createServer();
    await new Promise<void>((resolve) => unreachable.listen(0, "127.0.0.1", resolve));
    const port = (unreachable.address() as AddressInfo).port;
    await new Promise((resolve) => unreachable.close(resolve));
    const server = await start({ jwks: `http://127.0.0.1:${port}/jwks.json` });
    const { privateKey } = await generateKeyPair("ES256");
    const token = await new SignJWT({ sub: "ada", exp: now() + 60 })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .sign(privateKey);
    expect((await refusalOf(server.url, token)).status).toBe(500);
  });
});

describe("jwtVerifier", () => {
  it("needs exactly one key, and says what is wrong with a token as a TokenError", async () => {
    expect(() => jwtVerifier({})).toThrow(TypeError);
    expect(() => jwtVerifier({ secret: SECRET, jwks: "http://127.0.0.1/" })).toThrow(TypeError);
    const verify = jwtVerifier({ secret: SECRET });
    await expect(verify(undefined)).rejects.toMatchObject({ problem: "missing" });
    const { claims, expiresAt } = await verify(await hs256({ sub: "ada", exp: 2_000_000_000 }));
    expect(claims.sub).toBe("ada");
    expect(expiresAt).toBe(2_000_000_000_000);
    await expect(verify("x.y.z")).rejects.toBeInstanceOf(TokenError);
  });
});
