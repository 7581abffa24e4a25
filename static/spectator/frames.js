// The game view: binary frames decoded off the main thread and drawn on a canvas,
// at most once per display frame (latest wins).

export function parseFrame(buffer) {
  const view = new DataView(buffer);
  const headerLength = view.getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength)));
  return { header, bytes: new Uint8Array(buffer, 4 + headerLength) };
}

export class FrameView {
  constructor(canvas, { empty, meta, rate }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.empty = empty;
    this.meta = meta;
    this.rate = rate;
    this.sequence = 0;
    this.shownSequence = 0;
    this.pending = null;
    this.drawn = 0;
    this.drawTimes = [];
    this.raf = 0;
  }

  async show(header, bytes) {
    const sequence = ++this.sequence;
    let bitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes], { type: header.mime }));
    } catch {
      return; // An undecodable image: keep the last good frame.
    }
    if (sequence < this.shownSequence || (this.pending && sequence < this.pending.sequence)) {
      bitmap.close();
      return;
    }
    if (this.pending) this.pending.bitmap.close();
    this.pending = { bitmap, header, sequence };
    if (!this.raf) this.raf = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.raf = 0;
    const frame = this.pending;
    if (!frame) return;
    this.pending = null;
    const { bitmap, header } = frame;
    if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
      this.canvas.width = bitmap.width;
      this.canvas.height = bitmap.height;
    }
    this.ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    this.shownSequence = frame.sequence;
    this.drawn += 1;
    this.canvas.dataset.frames = String(this.drawn);
    this.empty.hidden = true;
    const where = [header.episode != null ? `Episode ${header.episode}` : "", header.step != null ? `step ${header.step}` : ""];
    this.meta.textContent = where.filter(Boolean).join(" · ") || "Live";
    const now = performance.now();
    this.drawTimes.push(now);
    while (this.drawTimes.length && now - this.drawTimes[0] > 2000) this.drawTimes.shift();
    const fps = this.drawTimes.length > 1 ? ((this.drawTimes.length - 1) * 1000) / (now - this.drawTimes[0]) : 0;
    this.rate.textContent = fps ? `${fps.toFixed(1)} fps shown` : "";
  }
}
