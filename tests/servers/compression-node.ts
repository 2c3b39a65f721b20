// Serves the compression app on Node: PORT.
import { serve } from "../../adapters/node.ts";
import app from "./compression-app.ts";

const server = await serve(app, { port: Number(process.env.PORT) });
console.log(`listening at ${server.url}`);
