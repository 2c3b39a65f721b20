/**
 * Loading a relay's optional dependency when the relay is used.
 *
 * @module
 */

/**
 * Imports an optional dependency; when it is not installed, says which one to install.
 *
 * @example
 * ```ts
 * const nats = await loadOptional("@nats-io/transport-node", "socketapi/nats", () =>
 *   import("@nats-io/transport-node"),
 * );
 * ```
 */
export async function loadOptional<Module>(
  name: string,
  entry: string,
  load: () => Promise<unknown>,
): Promise<Module> {
  try {
    return (await load()) as Module;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
      throw new Error(`${entry} needs ${name}, which is not installed: npm install ${name}`, {
        cause: error,
      });
    }
    throw error;
  }
}
