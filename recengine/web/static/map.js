// The library map: every analysed track as a dot, drawn straight into an ImageData buffer so that
// 100k points redraw in a few milliseconds; wheel zooms, drag pans, hover names the track, click
// opens it. Colours come from the folder, artist or album index.

const BACKGROUND = 0xffffffff;
// dot size in pixels: larger for small libraries, 2 from 20k tracks
const dotSize = (count) => (count < 2000 ? 5 : count < 20000 ? 3 : 2);
const HOVER_PX = 6;

function palette(n) {
  const out = new Uint32Array(Math.max(n, 1));
  for (let i = 0; i < out.length; i++) {
    const h = (i * 137.508) % 360, s = 0.65, l = 0.45 + 0.1 * (i % 3) / 2;
    const c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs(((h / 60) % 2) - 1)), m = l - c / 2;
    const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x]
      : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
    out[i] = (255 << 24) | (Math.round((b + m) * 255) << 16) | (Math.round((g + m) * 255) << 8) | Math.round((r + m) * 255);
  }
  return out;
}

export class LibraryMap {
  constructor(canvas, tip, { onOpen, describe }) {
    this.canvas = canvas;
    this.tip = tip;
    this.onOpen = onOpen;
    this.describe = describe; // (index) => text for the tooltip
    this.data = null;
    this.colourBy = "folder";
    this.view = { x: 0, y: 0, scale: 1 };
    this.drag = null;
    this.hovered = -1;
    canvas.addEventListener("wheel", (e) => this.zoom(e), { passive: false });
    canvas.addEventListener("mousedown", (e) => { this.drag = { x: e.clientX, y: e.clientY, moved: false }; });
    window.addEventListener("mouseup", (e) => this.release(e));
    canvas.addEventListener("mousemove", (e) => this.move(e));
    canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setData(data) {
    this.data = data;
    this.view = { x: 0, y: 0, scale: 1 };
    this.colours = null;
    this.draw();
  }

  setColour(by) {
    this.colourBy = by;
    this.colours = null;
    this.draw();
  }

  // grid coordinates (0..grid) -> canvas pixels
  project() {
    const { grid, x, y, count } = this.data;
    const w = this.canvas.width, h = this.canvas.height, pad = 8;
    const base = Math.min(w, h) - 2 * pad;
    const k = (base / grid) * this.view.scale;
    const ox = (w - base * this.view.scale) / 2 + this.view.x, oy = (h - base * this.view.scale) / 2 + this.view.y;
    const px = new Int32Array(count), py = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      px[i] = (ox + x[i] * k) | 0;
      py[i] = (oy + (grid - y[i]) * k) | 0;
    }
    return [px, py];
  }

  draw() {
    const c = this.canvas;
    const w = Math.max(c.clientWidth, 1), h = Math.max(c.clientHeight, 1);
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    const image = ctx.createImageData(w, h);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(BACKGROUND);
    let drawn = 0;
    const DOT = dotSize(this.data ? this.data.count : 0);
    if (this.data && this.data.count) {
      const labels = this.data[this.colourBy];
      if (!this.colours) this.colours = palette(this.data[`${this.colourBy}s`].length);
      const [px, py] = this.project();
      this.px = px; this.py = py;
      for (let i = 0; i < this.data.count; i++) {
        const x0 = px[i], y0 = py[i];
        if (x0 < 0 || y0 < 0 || x0 >= w - DOT || y0 >= h - DOT) continue;
        const colour = this.colours[labels[i] % this.colours.length];
        for (let dy = 0; dy < DOT; dy++) {
          const row = (y0 + dy) * w + x0;
          for (let dx = 0; dx < DOT; dx++) pixels[row + dx] = colour;
        }
        drawn++;
      }
      this.buildGrid(w, h);
    }
    ctx.putImageData(image, 0, 0);
    if (this.hovered >= 0 && this.px) {
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.strokeRect(this.px[this.hovered] - 3, this.py[this.hovered] - 3, DOT + 6, DOT + 6);
    }
    c.dataset.drawn = String(drawn);
  }

  // buckets of HOVER_PX-sized cells -> point indices, for hover and click
  buildGrid(w, h) {
    const cols = Math.ceil(w / HOVER_PX) + 1, rows = Math.ceil(h / HOVER_PX) + 1;
    const head = new Int32Array(cols * rows).fill(-1), next = new Int32Array(this.data.count).fill(-1);
    for (let i = 0; i < this.data.count; i++) {
      const cx = Math.floor(this.px[i] / HOVER_PX), cy = Math.floor(this.py[i] / HOVER_PX);
      if (cx < 0 || cy < 0 || cx >= cols || cy >= rows) continue;
      next[i] = head[cy * cols + cx];
      head[cy * cols + cx] = i;
    }
    this.grid = { cols, rows, head, next };
  }

  nearest(mx, my) {
    if (!this.grid) return -1;
    const { cols, rows, head, next } = this.grid;
    const cx = Math.floor(mx / HOVER_PX), cy = Math.floor(my / HOVER_PX);
    let best = -1, bestD = HOVER_PX * HOVER_PX;
    for (let y = cy - 1; y <= cy + 1; y++) for (let x = cx - 1; x <= cx + 1; x++) {
      if (x < 0 || y < 0 || x >= cols || y >= rows) continue;
      for (let i = head[y * cols + x]; i >= 0; i = next[i]) {
        const d = (this.px[i] - mx) ** 2 + (this.py[i] - my) ** 2;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  zoom(e) {
    e.preventDefault();
    const f = Math.exp(-e.deltaY * 0.0015);
    const scale = Math.min(Math.max(this.view.scale * f, 0.5), 400);
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left - this.canvas.width / 2, my = e.clientY - r.top - this.canvas.height / 2;
    const g = scale / this.view.scale;
    this.view = { x: mx - (mx - this.view.x) * g, y: my - (my - this.view.y) * g, scale };
    this.schedule();
  }

  move(e) {
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    if (this.drag) {
      const dx = e.clientX - this.drag.x, dy = e.clientY - this.drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) this.drag.moved = true;
      this.view.x += dx; this.view.y += dy;
      this.drag.x = e.clientX; this.drag.y = e.clientY;
      this.schedule();
      return;
    }
    const i = this.nearest(mx, my);
    if (i !== this.hovered) { this.hovered = i; this.schedule(); }
    if (i < 0) { this.tip.hidden = true; return; }
    this.tip.textContent = this.describe(i);
    this.tip.style.left = `${Math.min(mx + 12, this.canvas.width - 200)}px`;
    this.tip.style.top = `${my + 12}px`;
    this.tip.hidden = false;
  }

  release(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag || drag.moved || e.target !== this.canvas) return;
    const r = this.canvas.getBoundingClientRect();
    const i = this.nearest(e.clientX - r.left, e.clientY - r.top);
    if (i >= 0) this.onOpen(this.data.ids[i]);
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }
}
