import { describe, expect, it } from "vitest";
import { KeptRequest, keepRequest } from "../src/serve/kept-request.ts";

describe("KeptRequest", () => {
  it("builds the URL from an origin-form target and the Host header", () => {
    const request = new KeptRequest("/chat?token=abc", "Host\n127.0.0.1:8000\nUser-Agent\nt/1");
    expect(request.url).toBe("http://127.0.0.1:8000/chat?token=abc");
    expect(request.headers.get("user-agent")).toBe("t/1");
  });

  it("keeps an absolute URL as it is", () => {
    const request = new KeptRequest("http://example.com/ws?x=1", "host\nother.example");
    expect(request.url).toBe("http://example.com/ws?x=1");
  });

  it("falls back to localhost without a usable Host header", () => {
    expect(new KeptRequest("/", "").url).toBe("http://localhost/");
    expect(new KeptRequest("/a", "host\nbad host").url).toBe("http://localhost/a");
  });

  it("joins repeated headers and leaves out those the Fetch standard refuses", () => {
    const request = new KeptRequest("/", "X-Tag\na\nx-tag\nb\nBad Name\nv\nAccept\n*/*");
    expect(request.headers.get("x-tag")).toBe("a, b");
    expect(request.headers.get("accept")).toBe("*/*");
    expect([...request.headers.keys()]).toEqual(["accept", "x-tag"]);
  });

  it("parses the headers once and keeps them", () => {
    const request = new KeptRequest("/", "a\n1");
    expect(request.parsed).toBe(false);
    const headers = request.headers;
    expect(request.parsed).toBe(true);
    expect(request.headers).toBe(headers);
  });
});

describe("keepRequest", () => {
  it("keeps an unread KeptRequest as it is", () => {
    const request = new KeptRequest("/", "a\n1");
    expect(keepRequest(request)).toBe(request);
  });

  it("copies a request whose headers were read, or any other request", () => {
    const read = new KeptRequest("/p", "host\nh.test\na\n1");
    void read.headers;
    const kept = keepRequest(read);
    expect(kept).not.toBe(read);
    expect(kept.url).toBe("http://h.test/p");
    expect(kept.headers.get("a")).toBe("1");

    const live = new Request("http://h.test/q?x=1", { headers: { b: "2", c: "3" } });
    const copy = keepRequest({ url: live.url, headers: live.headers });
    expect(copy).toBeInstanceOf(KeptRequest);
    expect(copy.url).toBe("http://h.test/q?x=1");
    expect(Object.fromEntries(copy.headers)).toEqual({ b: "2", c: "3" });
  });
});
