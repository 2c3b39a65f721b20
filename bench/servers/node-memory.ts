// What the Node subjects answer to a plain HTTP request: memory after a full collection
// (with --expose-gc), with the size of each V8 heap space.
import type { IncomingMessage, ServerResponse } from "node:http";
import { getHeapSpaceStatistics } from "node:v8";

export function memoryReport(_req: IncomingMessage, res: ServerResponse): void {
  (globalThis as { gc?: () => void }).gc?.();
  const spaces = getHeapSpaceStatistics().map((space) => [space.space_name, space.space_size]);
  res.end(JSON.stringify({ ...process.memoryUsage(), ...Object.fromEntries(spaces) }));
}
