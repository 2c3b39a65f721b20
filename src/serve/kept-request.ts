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

  /**
   * A request to keep, from one that may be gone after the upgrade (Deno's, Bun's);
   * `replace` sets one header to another value (a name in lower case).
   */
  static of(
    request: UpgradeRequest,
    replace?: readonly [name: string, value: string],
  ): KeptRequest {
    const items: string[] = [];
    const each = (value: string, name: string): void => {
      if (replace && name.toLowerCase() === replace[0]) return;
      items.push(name, value);
    };
    if (request instanceof KeptRequest && !request.parsed) request.#eachLine(each);
    // `forEach`, not iteration: a consumer's `lib` may have DOM without DOM.Iterable.
    else request.headers.forEach(each);
    if (replace) items.push(replace[0], replace[1]);
    // `join` makes one flat string; concatenation would keep a node per piece.
    return new KeptRequest(
      request instanceof KeptRequest ? request.#target : request.url,
      items.join(SEPARATOR),
    );
  }

  /**
   * One header's value (the values of a repeated header joined with `, `), or `null`:
   * read from the kept string, without parsing the others.
   */
  header(name: string): string | null {
    if (this.#headers !== undefined) return this.#headers.get(name);
    const wanted = name.toLowerCase();
    let found: string | null = null;
    this.#eachLine((value, key) => {
      if (key.toLowerCase() === wanted) found = found === null ? value : `${found}, ${value}`;
    });
    return found;
  }

  #eachLine(each: (value: string, name: string) => void): void {
    const items = this.#lines ? this.#lines.split(SEPARATOR) : [];
    for (let i = 0; i + 1 < items.length; i += 2) each(items[i + 1] as string, items[i] as string);
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
