import type { BaseIssue } from "valibot";
import type { WireIssue } from "./protocol.ts";

/** Turns valibot's issues into the wire format: a message and the path from the root of `data`. */
export function toWireIssues(issues: readonly BaseIssue<unknown>[]): WireIssue[] {
  return issues.map((issue) => ({
    message: issue.message,
    path: (issue.path ?? []).map((item) => {
      const key = item.key;
      return typeof key === "string" || typeof key === "number" ? key : String(key);
    }),
  }));
}
