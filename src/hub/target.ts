/**
 * Whom a broadcast is for when it is not every subscriber of its channel: everyone but one
 * connection, one connection, or every connection of one user (`userId` of the app). Only
 * subscribers of the channel are ever reached.
 */
export type Target =
  | { readonly except: string }
  | { readonly connection: string }
  | { readonly user: string };

/**
 * A targeted frame as it travels between instances: `#` (no frame starts so: every frame is
 * a JSON object), the target as JSON, a newline, the frame.
 */
export function targetedFrame(target: Target, frame: string): string {
  return `#${JSON.stringify(target)}\n${frame}`;
}

/** The target and the frame of a targeted frame; `undefined` for a frame for everyone. */
export function splitTargeted(text: string): { target: Target; frame: string } | undefined {
  if (text.charCodeAt(0) !== 35 /* # */) return undefined;
  const end = text.indexOf("\n");
  if (end < 0) return undefined;
  try {
    const target = JSON.parse(text.slice(1, end)) as Target;
    if (target === null || typeof target !== "object") return undefined;
    return { target, frame: text.slice(end + 1) };
  } catch {
    return undefined;
  }
}
