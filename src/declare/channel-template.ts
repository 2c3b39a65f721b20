/**
 * The names of the parameters in a channel name template: `"rooms/{room}"` gives `"room"`.
 *
 * @example
 * ```ts
 * type P = TemplateParams<"orgs/{org}/rooms/{room}">; // "org" | "room"
 * ```
 */
export type TemplateParams<TName extends string> =
  TName extends `${string}{${infer Param}}${infer Rest}` ? Param | TemplateParams<Rest> : never;

/**
 * The concrete names a client may subscribe to for a template: `"rooms/{room}"` gives
 * `` `rooms/${string}` ``.
 */
export type ConcreteName<TName extends string> =
  TName extends `${infer Head}{${string}}${infer Rest}`
    ? `${Head}${string}${ConcreteName<Rest>}`
    : TName;

const PARAM_SEGMENT = /^\{([A-Za-z_$][\w$]*)\}$/;

/**
 * A channel name, plain (`chat`) or with parameters in whole `/`-separated segments
 * (`rooms/{room}`). Concrete names (`rooms/42`) are matched as text, segment by segment.
 */
export class ChannelTemplate {
  /** The name as declared, e.g. `rooms/{room}`. */
  readonly name: string;
  /** The parameter names, in order. */
  readonly params: readonly string[];
  readonly #segments: readonly { literal?: string; param?: string }[];

  constructor(name: string) {
    this.name = name;
    this.#segments = name.split("/").map((segment) => {
      const param = PARAM_SEGMENT.exec(segment)?.[1];
      if (param !== undefined) return { param };
      if (segment.includes("{") || segment.includes("}")) {
        throw new TypeError(
          `Channel name '${name}': a parameter must fill a whole segment, like 'rooms/{room}'.`,
        );
      }
      return { literal: segment };
    });
    this.params = this.#segments.flatMap((s) => (s.param === undefined ? [] : [s.param]));
    if (new Set(this.params).size !== this.params.length) {
      throw new TypeError(`Channel name '${name}' repeats a parameter.`);
    }
  }

  /** Whether the name has no parameters. */
  get isStatic(): boolean {
    return this.params.length === 0;
  }

  /** The parameters of `concrete` when it matches, else `undefined`. */
  match(concrete: string): Record<string, string> | undefined {
    const parts = concrete.split("/");
    if (parts.length !== this.#segments.length) return undefined;
    const values: Record<string, string> = {};
    for (let i = 0; i < parts.length; i++) {
      const segment = this.#segments[i];
      const part = parts[i] as string;
      if (segment?.param !== undefined) {
        if (part === "") return undefined;
        values[segment.param] = part;
      } else if (segment?.literal !== part) return undefined;
    }
    return values;
  }

  /** The concrete name for these parameter values: `{ room: 42 }` gives `rooms/42`. */
  fill(values: Record<string, unknown>): string {
    if (this.isStatic) return this.name;
    return this.#segments
      .map((s) => (s.param === undefined ? s.literal : String(values[s.param])))
      .join("/");
  }
}
