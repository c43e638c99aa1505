// The ask box under the video: an operator's question about the chosen stream's last seconds,
// handed by the edge to the server tier (POST /api/ask), answered as server-sent events: `item`
// (the hand-off as it is now) and `piece` (the next text of the answer). Answers come as
// <think>REASONING</think><answer>ANSWER</answer> in pieces that may split a tag anywhere: the
// reasoning is shown dimmed, the answer plain, the tags never.
"use strict";

const askBox = (() => {
  const byId = (id) => document.getElementById(id);
  const TAGS = { "<think>": "reasoning", "</think>": "", "<answer>": "answer", "</answer>": "" };
  const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected"]);
  let streamOf = () => "";
  let asking = null; // the AbortController of the question being answered

  // Writes an answer's pieces into an element as spans: one per run of reasoning or answer.
  class AnswerView {
    constructor(element) {
      this.element = element;
      this.clear();
    }

    clear() {
      this.element.replaceChildren();
      this.held = ""; // text that may still be the start of a tag
      this.part = "";
      this.span = null;
    }

    feed(piece) {
      this.held += piece;
      while (this.held) {
        const start = this.held.indexOf("<");
        if (start < 0) {
          this.write(this.held);
          this.held = "";
          return;
        }
        this.write(this.held.slice(0, start));
        const rest = this.held.slice(start);
        const tag = Object.keys(TAGS).find((t) => rest.startsWith(t));
        if (tag !== undefined) {
          this.part = TAGS[tag];
          this.span = null;
          this.held = rest.slice(tag.length);
        } else if (Object.keys(TAGS).some((t) => t.startsWith(rest))) {
          this.held = rest; // wait for the next piece to say whether it is a tag
          return;
        } else {
          this.write("<");
          this.held = rest.slice(1);
        }
      }
    }

    finish() {
      this.write(this.held);
      this.held = "";
    }

    write(text) {
      if (!text) return;
      if (!this.span) {
        this.span = document.createElement("span");
        this.span.className = this.part === "reasoning" ? "reasoning" : "said";
        this.element.append(this.span);
      }
      this.span.append(text);
    }
  }

  const view = new AnswerView(byId("answer-text"));

  function say(text, failure = false) {
    const status = byId("ask-status");
    status.textContent = text;
    status.classList.toggle("failure", failure);
    status.setAttribute("role", failure ? "alert" : "status");
  }

  // What the page says of the hand-off while it is not answered yet, and how it ended.
  function sayItem(item) {
    if (item.state === "waiting") {
      say(item.sends && item.last_error
        ? `waiting for the server (try ${item.sends}): ${item.last_error}`
        : "waiting for the server…");
    } else if (item.state === "accepted") {
      say(item.job_state === "running" ? "the server is answering…" : "queued on the server…");
    } else if (item.state === "succeeded") {
      say(`answered about ${item.frames} frames` +
        (item.withheld_frames ? ` (${item.withheld_frames} private frames left out)` : ""));
    } else {
      say(`${item.state}: ${item.error || "the server did not answer"}`, true);
    }
  }

  async function ask(question) {
    if (asking) asking.abort(); // the earlier answer still finishes in the edge's outbox
    const controller = new AbortController();
    asking = controller;
    view.clear();
    say("asking…");
    let response;
    try {
      response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ stream: streamOf(), question }),
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        say(`not asked: ${body.error || `refused (${response.status})`}`, true);
        return;
      }
      const last = await follow(response);
      view.finish();
      if (!last || !FINAL.has(last.state)) {
        say("the edge ended the answer before it was over", true);
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      say(`connection to the edge lost: ${error.message}`, true);
    } finally {
      if (asking === controller) asking = null;
    }
  }

  // Reads the answer's events to their end; returns the last item.
  async function follow(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let attempt = 0;
    let last = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return last;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        const event = JSON.parse(data);
        if (name === "item") {
          last = event;
          if (FINAL.has(event.state)) view.finish();
          sayItem(event);
        } else if (name === "piece") {
          if (event.attempt !== attempt) {
            if (attempt) view.clear(); // the job runs again after a server restart: afresh
            say(attempt ? "the server is answering again…" : "the server is answering…");
            attempt = event.attempt;
          }
          view.feed(event.text);
        }
      }
    }
  }

  byId("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = byId("question").value.trim();
    if (question) ask(question);
  });

  return {
    // Show the box when the edge has a server to ask; enable it for operators (and admins).
    configure(state, chosenStream) {
      streamOf = chosenStream;
      const box = byId("ask");
      box.hidden = !state.ask;
      const allowed = state.role === "operator" || state.role === "admin";
      byId("question").disabled = !allowed;
      byId("ask-button").disabled = !allowed;
      if (!allowed && state.ask) say("asking the server needs an operator's token");
      else if (!asking) say("");
    },
    stop() {
      if (asking) asking.abort();
      asking = null;
    },
  };
})();
