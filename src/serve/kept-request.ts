import type { UpgradeRequest } from "../context.ts";

// Header names and values cannot hold a line break (RFC 9110), so one joins them.
const SEPARATOR = "\n";

/**
 * The upgrade request as a connection keeps it for its whole life: the request target and
 * the headers joined into one string (`name\nvalue\n…`). The URL and the `Headers` are made
 * when a handler first reads them; an idle connection keeps one string instead of an object
 * and a string per header (Node: about 170 bytes of heap less per connection with 12
 * headers) or a copy of Deno's `Headers` (about 1 KB less). Bun keeps its native `Headers`,
 * which cost less than this string in its heap.
 */
export class KeptRequest implements UpgradeRequest {
  /** The request's URL, or, as Node's parser gives it, only its path. */
  readonly #target: string;
  #lines: string | undefined;
  #headers: Headers | undefined;
  #url: string | undefined;

  /**
   * @param target the URL, or an origin-form target (`/path?query`) completed on first
   *   use with the `Host` header.
   * @param lines the header names and values, alternating, joined with `\n` (Node's
   *   `rawHeaders.join("\n")`).
   */
  constructor(target: string, lines: string) {
    this.#target = target;
    this.#lines = lines;
  }

  /** A request to keep, from one that may be gone after the upgrade (Deno's, Bun's). */
  static of(request: UpgradeRequest): KeptRequest {
    const items: string[] = [];
    // `forEach`, not iteration: a consumer's `lib` may have DOM without DOM.Iterable.
    request.headers.forEach((value, name) => {
      items.push(name, value);
    });
    // `join` makes one flat string; concatenation would keep a node per piece.
    return new KeptRequest(request.url, items.join(SEPARATOR));
  }

  /** Whether a handler has read the headers, which are then kept parsed. */
  get parsed(): boolean {
    return this.#headers !== undefined;
  }

  get url(): string {
    if (this.#url === undefined) {
      const host = this.headers.get("host");
      try {
        this.#url = new URL(this.#target, `http://${host ?? "localhost"}`).href;
      } catch {
        this.#url = new URL(this.#target, "http://localhost").href;
      }
    }
    return this.#url;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const headers = new Headers();
      const items = this.#lines ? this.#lines.split(SEPARATOR) : [];
      for (let i = 0; i + 1 < items.length; i += 2) {
        try {
          headers.append(items[i] as string, items[i + 1] as string);
        } catch {
          // A header the Fetch standard refuses (Node's parser is laxer) is left out.
        }
      }
      this.#headers = headers;
      this.#lines = undefined;
    }
    return this.#headers;
  }
}

/**
 * What a connection keeps of the request that opened it, once `onConnect` has seen it: the
 * same request if it is a {@link KeptRequest} whose headers nobody parsed, else a compact
 * copy.
 */
export function keepRequest(request: UpgradeRequest): UpgradeRequest {
  if (request instanceof KeptRequest && !request.parsed) return request;
  return KeptRequest.of(request);
}
