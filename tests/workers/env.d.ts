// The bindings of tests/workers/wrangler.toml, for `env` in the workerd tests.
declare namespace Cloudflare {
  interface Env {
    SOCKETAPI: DurableObjectNamespace;
  }
}
