// What the AsyncAPI document says of the binary codecs an app speaks besides JSON: the
// subprotocols a client offers in `Sec-WebSocket-Protocol` (each channel's WebSocket
// binding), and how a frame is encoded in each (the document's description). Called only
// for an app with `codecs`: the document of any other is as it was.
import type { Json } from "./asyncapi-json.ts";

/** The subprotocols of JSON (`socketapi`) and of the app's codecs, on every channel's binding. */
export function describeCodecs(
  codecs: readonly { readonly protocol: string; readonly name: string }[],
  channels: Json,
  info: { description?: string },
): void {
  const protocols = ["socketapi", ...codecs.map((codec) => codec.protocol)];
  const binding = {
    ws: {
      method: "GET",
      headers: {
        type: "object",
        properties: {
          "Sec-WebSocket-Protocol": {
            type: "string",
            description:
              `The encoding of the frames: ${codecs.map((c) => `\`${c.protocol}\` (${c.name}, binary frames)`).join(", ")} ` +
              "offered first, else JSON text (`socketapi`, or nothing). The server chooses the first codec it speaks.",
            examples: [`${protocols.slice(1).join(", ")}, socketapi`],
          },
        },
      },
      bindingVersion: "0.1.0",
    },
  };
  for (const channel of Object.values(channels)) (channel as Json).bindings = binding;
  info.description =
    `${info.description ?? ""} A client that offers ${codecs.map((c) => `\`${c.protocol}\``).join(" or ")} in ` +
    "Sec-WebSocket-Protocol gets the same frames encoded in it, in binary frames (bytes as bytes); " +
    'in JSON, bytes are written {"$bytes": base64}.';
}
