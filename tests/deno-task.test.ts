// deno.json on its own (as on JSR or Deno Deploy, without npm's node_modules) serves the
// seed example with `deno task start`.
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { root, type ServerProcess, startServer } from "./helpers/server-process.ts";
import { openClient } from "./helpers/ws-client.ts";

let dir: string | undefined;
let server: ServerProcess | undefined;

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("serves the seed example with `deno task start` from deno.json alone", {
  timeout: 90_000,
}, async () => {
  dir = await mkdtemp(join(tmpdir(), "socketapi-deno-"));
  for (const entry of ["src", "adapters", "examples", "deno.json"]) {
    await cp(join(root, entry), join(dir, entry), { recursive: true });
  }
  const deno = join(root, "node_modules", "deno", "deno");
  server = await startServer([deno, "task", "--cwd", dir, "start"], { timeout: 60_000 });
  const client = await openClient(server.url);
  expect(
    await client.request({ type: "action", channel: "add_numbers", data: { a: 5, b: 3 } }),
  ).toEqual({
    type: "action",
    channel: "add_numbers",
    status: "completed",
    data: 8,
  });
  client.ws.terminate();
});
