import type { BaseIssue } from "valibot";
import type { WireIssue } from "./protocol.ts";

/** The most issues an error frame lists: a huge invalid array must not make a huge answer. */
export const MAX_ISSUES = 20;
/** The longest issue message sent; valibot quotes what it received, which may be long. */
export const MAX_ISSUE_MESSAGE = 200;

/**
 * Turns valibot's issues into the wire format: a message and the path from the root of
 * `data`. At most {@link MAX_ISSUES}, each message cut at {@link MAX_ISSUE_MESSAGE}
 * characters, so that an answer never grows with a hostile input.
 */
export function toWireIssues(issues: readonly BaseIssue<unknown>[]): WireIssue[] {
  return issues.slice(0, MAX_ISSUES).map((issue) => ({
    message:
      issue.message.length > MAX_ISSUE_MESSAGE
        ? `${issue.message.slice(0, MAX_ISSUE_MESSAGE - 1)}…`
        : issue.message,
    path: (issue.path ?? []).map((item) => {
      const key = item.key;
      return typeof key === "string" || typeof key === "number" ? key : String(key);
    }),
  }));
}
