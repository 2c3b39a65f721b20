/**
 * Serializes a `data` frame once, for every subscriber of `channel`. A handler that returns
 * nothing sends `null`, so that the frame always has its `data` key.
 */
export function serializeData(channel: string, data: unknown): string {
  return `{"type":"data","channel":${JSON.stringify(channel)},"data":${JSON.stringify(data) ?? "null"}}`;
}
