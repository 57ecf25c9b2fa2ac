// The in-browser player: an <audio> element over the audio endpoint. It reports what happens
// (start, playing, paused, ended, left) with the seconds actually listened; the server applies the
// playback rules (half the track or 4 minutes = play, under 30 s = skip) and records the history.

import { audioUrl, post } from "./api.js";

const REPORT_EVERY_S = 5;
const session = (crypto.randomUUID ? crypto.randomUUID() : `s${Date.now()}${Math.random()}`).slice(0, 64);

export class Player {
  constructor(audio, label, user) {
    this.audio = audio;
    this.label = label;
    this.user = user; // () => current listener name
    this.track = null;
    this.listened = 0;
    this.last = 0;
    this.sinceReport = 0;
    audio.addEventListener("play", () => this.report(this.started ? "playing" : "start"));
    audio.addEventListener("pause", () => { if (!audio.ended) this.report("paused"); });
    audio.addEventListener("ended", () => this.report("ended"));
    audio.addEventListener("seeked", () => { this.last = audio.currentTime; });
    audio.addEventListener("timeupdate", () => this.tick());
    window.addEventListener("pagehide", () => this.leave(true));
  }

  tick() {
    const now = this.audio.currentTime;
    const delta = now - this.last;
    this.last = now;
    if (this.audio.paused || this.audio.seeking || !(delta > 0 && delta < 2)) return;
    this.listened += delta;
    this.sinceReport += delta;
    if (this.sinceReport >= REPORT_EVERY_S) this.report("playing");
  }

  play(track) {
    if (this.track) this.leave(false);
    this.track = track;
    this.started = false;
    this.listened = 0;
    this.last = 0;
    this.label.textContent = track.display;
    this.audio.src = audioUrl(track.id);
    this.audio.play().catch((e) => { this.label.textContent = `${track.display}: ${e.message}`; });
  }

  leave(unloading) {
    if (this.track && !this.audio.ended) this.report("left", unloading);
    this.track = null;
  }

  report(state, unloading = false) {
    if (!this.track) return;
    if (state === "start") this.started = true;
    this.sinceReport = 0;
    const body = { session, user: this.user(), track: this.track.id, state,
                   listened_s: Math.round(this.listened * 10) / 10 };
    post("/api/v1/player", body, { keepalive: unloading }).catch(() => {});
  }
}
