// The page: the provider (one socket for every component), in StrictMode.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.tsx";
import { SocketAPIProvider } from "./hooks.ts";

const url = new URL("/ws", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
url.search = location.search; // ?name=ada
const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <SocketAPIProvider url={url.href}>
        <App />
      </SocketAPIProvider>
    </StrictMode>,
  );
}
