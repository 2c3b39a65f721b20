// The chat room: messages (the kept ones on load, then live), who is here, a box to write
// in, and a summary streamed word by word.
import { type FormEvent, useEffect, useState } from "react";
import { useAction, useChannel, useConnection, usePresence, useStream } from "./hooks.ts";

interface Message {
  name: string;
  text: string;
  at: number;
}

function Messages() {
  const recent = useAction("recent");
  const live = useChannel("room", {
    initial: [] as Message[],
    reducer: (messages, message) => [...messages, message],
  });
  const { status } = useConnection();
  const { call } = recent;
  // What was said before this page loaded (or while it was reloading), once connected.
  useEffect(() => {
    if (status === "open") void call().catch(() => {});
  }, [status, call]);
  const kept = recent.data ?? [];
  const seen = new Set(kept.map((message) => `${message.at}:${message.name}:${message.text}`));
  const all = [...kept, ...live.data.filter((m) => !seen.has(`${m.at}:${m.name}:${m.text}`))];
  return (
    <ul className="messages" aria-label="messages">
      {all.map((message) => (
        <li key={`${message.at}:${message.name}:${message.text}`}>
          <b>{message.name}</b> {message.text}
        </li>
      ))}
    </ul>
  );
}

function People() {
  const { members } = usePresence("room");
  return (
    <p className="people" data-testid="people">
      Here: {members.map((member) => member.info.name).join(", ") || "nobody yet"}
    </p>
  );
}

function Summary() {
  const summary = useStream("summary", undefined);
  return (
    <p className="summary" data-testid="summary">
      {summary.chunks.join("")}
      {summary.done ? "" : "…"}
    </p>
  );
}

function Composer() {
  const send = useAction("send");
  const [text, setText] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    void send.call({ text }).then(() => setText(""));
  };
  return (
    <form onSubmit={submit}>
      <input aria-label="message" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit" disabled={send.pending}>
        Send
      </button>
      {send.error ? <span className="error">{send.error.message}</span> : null}
    </form>
  );
}

export function App() {
  const { status, refusal } = useConnection();
  const [showSummary, setShowSummary] = useState(false);
  return (
    <main>
      <h1>SocketAPI chat</h1>
      <p className="status" data-testid="status">
        {status}
      </p>
      {refusal ? <p className="error">Refused: {refusal.message}</p> : null}
      <People />
      <Messages />
      <Composer />
      <button type="button" onClick={() => setShowSummary((shown) => !shown)}>
        Summary
      </button>
      {showSummary ? <Summary /> : null}
    </main>
  );
}
