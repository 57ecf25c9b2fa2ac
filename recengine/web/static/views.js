// The page's views: search, a track with its similar tracks, "For you", playlists, status.
// Text from the library only ever goes into textContent, never into markup.

import { get, post, query } from "./api.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const $ = (id) => document.getElementById(id);

function meta(t) {
  return [t.artist, t.album, t.duration ? `${Math.round(t.duration)} s` : null].filter(Boolean).join(" · ");
}

export class Views {
  constructor(player, user, showError) {
    this.player = player;
    this.user = user; // () => listener name
    this.showError = showError;
    this.current = null;
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      location.hash = `#/search?q=${encodeURIComponent($("q").value)}`;
    });
    $("track-play").addEventListener("click", () => this.current && this.player.play(this.current));
    for (const id of ["track-like", "track-dislike"]) {
      $(id).addEventListener("click", (e) => this.feedback(this.current, e.target.dataset.event, $("track-feedback")));
    }
    $("foryou-reload").addEventListener("click", () => this.forYou());
    $("playlist-refresh").addEventListener("click", () => this.refreshPlaylist());
  }

  async feedback(track, event, note) {
    if (!track) return;
    try {
      await post("/api/v1/history", { user: this.user(), track: track.id, event });
      if (note) note.textContent = `${event} recorded`;
    } catch (e) { this.showError(e); }
  }

  trackList(ol, tracks, buttons = ["play"]) {
    ol.replaceChildren(...tracks.map((t) => {
      const li = el("li", { "data-id": t.id });
      const box = el("span", { class: "buttons" });
      for (const kind of buttons) {
        box.append(el("button", { text: kind, "data-action": kind, onclick: async () => {
          if (kind === "play") return this.player.play(t);
          await this.feedback(t, kind);
          li.classList.add("done");
        } }));
      }
      li.append(box, el("a", { href: `#/track/${t.id}`, text: t.display }), el("span", { class: "muted", text: `  ${meta(t)}` }));
      if (t.why) li.append(el("span", { class: "why", text: t.why }));
      return li;
    }));
  }

  async search(q) {
    $("q").value = q;
    const page = await get(query("/api/v1/tracks", { q, limit: 100 }));
    $("search-summary").textContent = `${page.total} track${page.total === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}`;
    this.trackList($("search-results"), page.tracks);
  }

  async track(id) {
    const [track, similar] = await Promise.all([
      get(`/api/v1/tracks/${encodeURIComponent(id)}`),
      get(query("/api/v1/similar", { track: id, n: 20 })).catch((e) => ({ tracks: [], error: e.message })),
    ]);
    this.current = track;
    $("track-title").textContent = track.display;
    $("track-meta").textContent = `${meta(track)} — ${track.relpath}`;
    $("track-feedback").textContent = similar.error || "";
    this.trackList($("track-similar"), similar.tracks);
  }

  async forYou() {
    const recs = await get(query("/api/v1/recommend", { user: this.user(), n: 30 }));
    this.trackList($("foryou-list"), recs.tracks, ["play", "like", "dislike", "skip"]);
  }

  async playlists(name) {
    const { playlists } = await get("/api/v1/playlists");
    $("playlist-list").replaceChildren(...playlists.map((p) => el("li", {},
      el("a", { href: `#/playlist/${encodeURIComponent(p.name)}`, text: p.name }),
      el("span", { class: "muted", text: `  ${p.kind}, ${p.size} tracks${p.description ? ` — ${p.description}` : ""}` }))));
    if (!playlists.length) $("playlist-list").append(el("li", { class: "muted", text: "no recipes in config.yaml" }));
    $("playlist-detail").hidden = !name;
    if (!name) return;
    const detail = await get(`/api/v1/playlists/${encodeURIComponent(name)}`);
    this.playlistName = name;
    $("playlist-name").textContent = detail.name;
    $("playlist-note").textContent = "";
    this.trackList($("playlist-tracks"), detail.tracks);
  }

  async refreshPlaylist() {
    try {
      const done = await post(`/api/v1/playlists/${encodeURIComponent(this.playlistName)}/refresh`);
      $("playlist-note").textContent = (done.written.length ? `wrote ${done.written.join(", ")}` : "unchanged")
        + (done.short ? ` (${done.short})` : "");
    } catch (e) { this.showError(e); }
  }

  async status() {
    const [s, f] = await Promise.all([get("/api/v1/status"), get("/api/v1/failures")]);
    const c = s.catalog, d = s.daemon;
    const rows = [
      ["daemon", s.running ? `running (pid ${s.pid})${d ? `, ${d.state}` : ""}` : "not running"],
      ["catalog", `${c.ok} analysed, ${c.pending} pending, ${c.failures} failed, ${c.missing} missing`],
    ];
    if (d && s.running) {
      for (const [root, info] of Object.entries(d.watcher?.roots || {})) {
        rows.push([`watching ${root}`, `${info.mode}${info.why ? ` (${info.why})` : ""}`]);
      }
      if (d.index) rows.push(["index", `generation ${d.index.generation}, ${d.index.size} tracks, ${d.index.fresh} fresh`]);
    }
    $("status-list").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    $("failure-list").replaceChildren(...f.failures.map((x) => el("li", { text: `${x.reason}: ${x.path} — ${x.message}` })));
    if (!f.failures.length) $("failure-list").append(el("li", { class: "muted", text: "none" }));
  }
}
