// What the Deno subjects answer to a plain HTTP request: memory after a full collection
// (with --v8-flags=--expose-gc), in the fields the load generator reads.
export function memoryReport(): Response {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed, heapTotal, external } = Deno.memoryUsage();
  return Response.json({ rss, heapUsed, heapTotal, external });
}
