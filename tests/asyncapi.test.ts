// The AsyncAPI 3.0 document an app builds of its declarations: the seed example's against
// a reviewed snapshot, and an app with every feature, both valid for AsyncAPI's own parser
// (no error, no warning); what JSON Schema cannot say is said in words; served only when
// asked, and written by the socketapi command.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Parser } from "@asyncapi/parser";
import * as v from "valibot";
import { afterAll, describe, expect, it, vi } from "vitest";
import { type NodeServer, serve } from "../adapters/node.ts";
import seed from "../examples/main.ts";
import { depends, ForbiddenError, SocketAPI, subscribeParam } from "../src/index.ts";
import { msgpack } from "../src/msgpack.ts";
import { root, startServer } from "./helpers/server-process.ts";

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON, read by path.
type Json = any;

/** Every diagnostic AsyncAPI's parser gives that is an error or a warning. */
async function problemsOf(document: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  // Spectral's severities: 0 error, 1 warning, 2 information, 3 hint.
  return diagnostics
    .filter((diagnostic) => diagnostic.severity <= 1)
    .map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`);
}

const user = depends(
  v.object({ token: v.pipe(v.string(), v.description("A session token.")) }),
  ({ token }) => ({ name: token }),
);
const now = depends(() => Date.now());

/** An app with every feature the document describes. */
const everything = new SocketAPI()
  .action(
    "add",
    {
      description: "Adds two numbers.",
      input: v.pipe(
        v.object({ a: v.number(), b: v.number() }),
        v.metadata({ examples: [{ a: 5, b: 3 }] }),
      ),
      output: v.pipe(v.number(), v.description("The sum.")),
      guard: () => true,
    },
    ({ a, b }) => a + b,
  )
  .action("whoami", { input: v.object({ user, now }) }, ({ user }) => user.name)
  .action(
    "strict",
    {
      input: v.objectAsync({
        even: v.pipe(
          v.number(),
          v.check((n) => n % 2 === 0, "must be even"),
        ),
        count: v.pipe(v.string(), v.transform(Number), v.minValue(1)),
        later: v.pipeAsync(
          v.string(),
          v.checkAsync(async (s) => s !== "taken", "is taken"),
        ),
      }),
    },
    () => {
      throw new ForbiddenError("no");
    },
  )
  .action("tick", () => undefined)
  .action("words", { output: v.string() }, async function* () {
    yield "one";
    return "done";
  })
  .channel(
    "rooms/{room}",
    {
      description: "A room's messages.",
      params: v.object({
        room: v.pipe(v.string(), v.description("The room's id."), v.examples(["42"])),
        text: v.optional(v.string(), ""),
        token: subscribeParam(v.optional(v.string())),
      }),
      data: v.object({ text: v.string() }),
      history: { size: 100, ttl: 60_000 },
      presence: () => ({ name: "someone" }),
      initialData: true,
    },
    ({ text }) => ({ text }),
  )
  .channel(
    "levels/{level}",
    { params: v.object({ level: v.picklist(["info", "warn"]) }) },
    ({ level }) => ({ level }),
  )
  // An action and a channel may share a name: each keeps its own key.
  .channel("add", () => null);

describe("the seed example's document", () => {
  it("is the reviewed one", async () => {
    const document = await seed.asyncapi({ servers: { local: { host: "127.0.0.1:8000" } } });
    await expect(`${JSON.stringify(document, null, 2)}\n`).toMatchFileSnapshot(
      "./__snapshots__/asyncapi-seed.json",
    );
  });

  it("is valid for AsyncAPI's parser: no error, no warning", async () => {
    expect(await problemsOf(await seed.asyncapi())).toEqual([]);
  });
});

describe("an app with MessagePack", () => {
  it("lists the subprotocols on every channel's binding, says how bytes travel, and stays valid", async () => {
    const app = new SocketAPI({ codecs: [msgpack] }).action(
      "echo",
      { input: v.string() },
      (s) => s,
    );
    const document: Json = await app.asyncapi();
    expect(await problemsOf(document)).toEqual([]);
    for (const channel of Object.values(document.channels) as Json[]) {
      const header = channel.bindings.ws.headers.properties["Sec-WebSocket-Protocol"];
      expect(header.examples).toEqual(["socketapi.msgpack, socketapi"]);
      expect(header.description).toContain("`socketapi.msgpack` (MessagePack, binary frames)");
    }
    expect(document.info.description).toContain('bytes are written {"$bytes": base64}');
    // An app without codecs: the binding as it always was.
    const plain: Json = await seed.asyncapi();
    expect(plain.channels.add_numbers.bindings).toEqual({
      ws: { method: "GET", bindingVersion: "0.1.0" },
    });
  });
});

describe("an app with every feature", () => {
  it("has a valid document: no error, no warning", async () => {
    const document = await everything.asyncapi({
      title: "Everything",
      version: "2.0.0",
      servers: { production: { host: "api.example.com", protocol: "wss", pathname: "/ws" } },
    });
    expect(await problemsOf(document)).toEqual([]);
    expect(document.info).toMatchObject({ title: "Everything", version: "2.0.0" });
  });

  it("describes an action: its call, its reply with the result, its errors, its examples", async () => {
    const { channels, operations }: Json = await everything.asyncapi();
    const add = channels.add;
    expect(add.address).toBe("add");
    expect(add.description).toBe("Adds two numbers.");
    expect(add.messages.call.payload.properties).toMatchObject({
      type: { const: "action" },
      channel: { const: "add" },
      data: { type: "object", required: ["a", "b"] },
      id: { $ref: "#/components/schemas/RequestId" },
    });
    expect(add.messages.call.examples).toEqual([
      { payload: { type: "action", channel: "add", data: { a: 5, b: 3 }, id: 1 } },
    ]);
    expect(add.messages.completed.payload.properties.data).toEqual({
      type: "number",
      description: "The sum.",
    });
    expect(add.messages.error.payload.properties.code.enum).toContain("FORBIDDEN");
    expect(operations.add).toMatchObject({
      action: "receive",
      channel: { $ref: "#/channels/add" },
      messages: [{ $ref: "#/channels/add/messages/call" }],
      reply: {
        messages: [
          { $ref: "#/channels/add/messages/completed" },
          { $ref: "#/channels/add/messages/error" },
        ],
      },
    });
    // The channel named like the action has a key of its own.
    expect(channels.add_2.address).toBe("add");
    expect(operations["add_2.subscribe"].channel).toEqual({ $ref: "#/channels/add_2" });
    expect(channels.tick.messages.call.payload.properties.data.description).toContain(
      "declares no input",
    );
  });

  it("describes a streaming action: its chunks before completed, and the cancel a client may send", async () => {
    const { channels, operations }: Json = await everything.asyncapi();
    const words = channels.words;
    expect(words.messages.chunk.payload.properties).toMatchObject({
      type: { const: "chunk" },
      channel: { const: "words" },
      data: { type: "string" },
      id: { $ref: "#/components/schemas/RequestId" },
    });
    expect(words.messages.cancel.payload.required).toEqual(["type", "channel", "id"]);
    expect(words.messages.error.payload.properties.code.enum).toEqual(
      expect.arrayContaining(["CANCELLED", "TOO_MANY_STREAMS", "HANDLER_TIMEOUT"]),
    );
    expect(operations.words.reply.messages).toEqual([
      { $ref: "#/channels/words/messages/chunk" },
      { $ref: "#/channels/words/messages/completed" },
      { $ref: "#/channels/words/messages/error" },
    ]);
    expect(operations["words.cancel"].messages).toEqual([
      { $ref: "#/channels/words/messages/cancel" },
    ]);
    // An action that does not stream has neither.
    expect(channels.add.messages.chunk).toBeUndefined();
    expect(operations["add.cancel"]).toBeUndefined();
  });

  it("shows the input a dependency takes, and not one that takes nothing from the client", async () => {
    const { channels }: Json = await everything.asyncapi();
    expect(channels.whoami.messages.call.payload.properties.data).toEqual({
      type: "object",
      properties: {
        user: {
          type: "object",
          properties: { token: { type: "string", description: "A session token." } },
          required: ["token"],
        },
      },
      required: ["user"],
    });
  });

  it("says in words what JSON Schema cannot: custom and async checks, transforms", async () => {
    const { channels }: Json = await everything.asyncapi();
    const data = channels.strict.messages.call.payload.properties.data.properties;
    // Still a JSON Schema of what the client sends, for what JSON Schema can say.
    expect(data.even.type).toBe("number");
    expect(data.even.description).toBe("Also checked on the server (check: must be even).");
    expect(data.count).toMatchObject({ type: "string" });
    expect(data.count.description).toContain("The server transforms it (transform)");
    expect(data.later.description).toBe("Also checked on the server (check: is taken).");
    expect(channels.strict.messages.call.payload.properties.data.description).toBe(
      "Checked asynchronously on the server.",
    );
  });

  it("describes a channel: address and parameters, subscribe-time data, history, presence", async () => {
    const { channels, operations }: Json = await everything.asyncapi();
    const room = channels.rooms_room;
    expect(room.address).toBe("rooms/{room}");
    expect(room.parameters).toEqual({
      room: { description: "The room's id.", examples: ["42"] },
    });
    expect(channels.levels_level.parameters).toEqual({ level: { enum: ["info", "warn"] } });
    const subscribe = room.messages.subscribe.payload.properties;
    expect(subscribe.channel).toMatchObject({ type: "string", pattern: "^rooms/[^/]+$" });
    expect(subscribe.data.properties).toEqual({ token: { type: "string" } });
    expect(Object.keys(subscribe)).toEqual(["type", "channel", "data", "id", "since", "presence"]);
    expect(Object.keys(room.messages.subscribed.payload.properties)).toEqual([
      "type",
      "channel",
      "id",
      "offset",
      "epoch",
      "recovered",
      "members",
      "count",
    ]);
    expect(room.messages.data.payload.properties.data).toEqual({
      type: "object",
      properties: { text: { type: "string" } },
      required: ["text"],
    });
    // Initial data answers the subscribe, after `subscribed`.
    expect(operations["rooms_room.subscribe"].reply.messages).toContainEqual({
      $ref: "#/channels/rooms_room/messages/data",
    });
    expect(operations["rooms_room.data"].action).toBe("send");
    expect(operations["rooms_room.presence"].messages).toEqual([
      { $ref: "#/channels/rooms_room/messages/join" },
      { $ref: "#/channels/rooms_room/messages/leave" },
    ]);
    expect(room.bindings).toEqual({ ws: { method: "GET", bindingVersion: "0.1.0" } });
  });

  it("has ping and pong, and the errors of frames that cannot be read", async () => {
    const { channels, operations }: Json = await everything.asyncapi();
    expect(channels.connection.address).toBeNull();
    expect(operations["connection.ping"].reply.messages).toEqual([
      { $ref: "#/channels/connection/messages/pong" },
    ]);
    expect(channels.connection.messages.frameError.payload.properties.code.enum).toEqual([
      "INVALID_JSON",
      "INVALID_MESSAGE",
      "UNKNOWN_TYPE",
      "NOT_FOUND",
      "MESSAGE_TOO_LARGE",
      "RATE_LIMITED",
    ]);
  });

  it("keeps recursive schemas in its components", async () => {
    type Tree = { name: string; children: Tree[] };
    const tree: v.GenericSchema<Tree> = v.object({
      name: v.string(),
      children: v.array(v.lazy(() => tree)),
    });
    const app = new SocketAPI()
      .action("plant", { input: tree }, () => 1)
      .action("graft", { input: v.object({ onto: tree }) }, () => 1);
    const document: Json = await app.asyncapi();
    expect(await problemsOf(document)).toEqual([]);
    const refs = JSON.stringify(document.channels).match(/#\/components\/schemas\/Schema\d+/g);
    expect(new Set(refs).size).toBeGreaterThanOrEqual(2);
    for (const ref of new Set(refs)) {
      expect(document.components.schemas[ref.split("/").pop() as string]).toMatchObject({
        type: "object",
      });
    }
  });
});

describe("served", () => {
  let server: NodeServer | undefined;
  afterAll(() => server?.close());

  it("only when asked: /docs and /asyncapi.json are WebSocket paths like any other by default", async () => {
    const plain = await serve(seed, { port: 0 });
    try {
      for (const path of ["/docs", "/asyncapi.json"]) {
        expect((await fetch(`http://127.0.0.1:${plain.port}${path}`)).status).toBe(426);
      }
    } finally {
      await plain.close();
    }
  });

  it("at the paths given, for GET and HEAD", async () => {
    server = await serve(seed, {
      port: 0,
      path: "/ws",
      docs: { path: "/api/docs", asyncapiPath: "/api/asyncapi.json" },
    });
    const base = `http://127.0.0.1:${server.port}`;
    const document: Json = await (await fetch(`${base}/api/asyncapi.json`)).json();
    expect(document.servers.default).toEqual({
      host: `127.0.0.1:${server.port}`,
      protocol: "ws",
      pathname: "/ws",
    });
    const page = await fetch(`${base}/api/docs`);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('"asyncapi":"/api/asyncapi.json","socket":"/ws"');
    expect(html).not.toContain("</script><");
    expect((await fetch(`${base}/api/docs`, { method: "HEAD" })).status).toBe(200);
    const post = await fetch(`${base}/api/docs`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${base}/docs`)).status).toBe(404);
  });

  it("points the page at the socket docs.socket names, and lets it connect there only", async () => {
    const elsewhere = await serve(seed, { port: 0, docs: { socket: "wss://ws.example.com/live" } });
    try {
      const page = await fetch(`http://127.0.0.1:${elsewhere.port}/docs`);
      expect(page.headers.get("content-security-policy")).toContain(
        `connect-src 'self' ws://127.0.0.1:${elsewhere.port} wss://127.0.0.1:${elsewhere.port} wss://ws.example.com;`,
      );
      expect(await page.text()).toContain('"socket":"wss://ws.example.com/live"');
    } finally {
      await elsewhere.close();
    }
  });

  it("builds the document once, not per request, until a declaration is added", async () => {
    const app = new SocketAPI().action("ping_me", () => "pong");
    const built = vi.spyOn(app, "asyncapi");
    const docs = await serve(app, { port: 0, docs: true });
    try {
      const url = `http://127.0.0.1:${docs.port}/asyncapi.json`;
      const first = await (await fetch(url)).text();
      for (let i = 0; i < 50; i++) expect(await (await fetch(url)).text()).toBe(first);
      // Before: built again for each of the 51.
      expect(built).toHaveBeenCalledTimes(1);
      // Hosts are the client's to say: a few documents are kept, not one per host.
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve, reject) => {
          const asked = get(url, { headers: { host: `h${i}.example:80` } }, (response) => {
            response.resume();
            response.on("end", resolve);
          });
          asked.on("error", reject);
        });
      }
      expect(built).toHaveBeenCalledTimes(21);
      app.action("added_later", () => 1);
      const again: Json = await (await fetch(url)).json();
      expect(Object.keys(again.operations)).toContain("added_later");
      expect(built).toHaveBeenCalledTimes(22);
    } finally {
      await docs.close();
    }
  });
});

describe("the socketapi command", () => {
  it("writes the document with --asyncapi, without serving", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "socketapi-asyncapi-")), "asyncapi.json");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["adapters/node-cli.js", "examples/main.ts", "--asyncapi", out],
      { cwd: root },
    );
    expect(stdout).toContain(`wrote the AsyncAPI document of examples/main.ts to ${out}`);
    const written = JSON.parse(readFileSync(out, "utf8"));
    expect(written).toEqual(await seed.asyncapi());
  });

  it("serves /docs and /asyncapi.json with --docs", async () => {
    const cli = await startServer([
      "node",
      "adapters/node-cli.js",
      "examples/main.ts",
      "--port",
      "{port}",
      "--docs",
    ]);
    try {
      expect(cli.output()).toContain(`docs at http://127.0.0.1:${cli.port}/docs`);
      const page = await fetch(`http://127.0.0.1:${cli.port}/docs`);
      expect(page.status).toBe(200);
      const document: Json = await (
        await fetch(`http://127.0.0.1:${cli.port}/asyncapi.json`)
      ).json();
      expect(Object.keys(document.channels)).toEqual([
        "add_numbers",
        "send_message",
        "chat",
        "connection",
      ]);
    } finally {
      await cli.stop();
    }
  });
});
