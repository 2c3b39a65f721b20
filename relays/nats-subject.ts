// How a channel name becomes a NATS subject token.

/**
 * A channel's name as one subject token: NATS gives `.`, `*`, `>` and whitespace a meaning
 * in subjects; percent-encoding leaves none of them. A lone surrogate, which
 * `encodeURIComponent` throws on and UTF-8 cannot carry, becomes `%uD800`: no UTF-8 escape
 * has a `u` after its `%`, so two names never share a subject, and no name throws.
 */
export function subjectToken(channel: string): string {
  return channel.replace(SURROGATE_OR_TEXT, (part) =>
    LONE_SURROGATE.test(part)
      ? `%u${part.charCodeAt(0).toString(16).toUpperCase()}`
      : encodeURIComponent(part).replaceAll(".", "%2E").replaceAll("*", "%2A"),
  );
}

/** A lone surrogate (under `u`, pairs are one code point and never match), or a run of text. */
const SURROGATE_OR_TEXT = /\p{Surrogate}|\P{Surrogate}+/gu;
const LONE_SURROGATE = /^\p{Surrogate}$/u;
