// Watch time: the seconds the player actually advanced while playing, reported in whole
// seconds (recordWatchTime takes 1–3600) every so often and when the page goes away.

export class WatchTimer {
  private last: number | null = null;
  private pending = 0;

  /** A `timeupdate` while playing: counts forward progress, not seeks (big jumps). */
  tick(currentTime: number): void {
    if (this.last !== null) {
      const d = currentTime - this.last;
      if (d > 0 && d < 2.5) this.pending += d;
    }
    this.last = currentTime;
  }

  /** Playback paused or seeked: the next tick starts a new stretch. */
  reset(): void {
    this.last = null;
  }

  /** Whole seconds to report now (at most 3600), keeping the fraction for later. */
  take(min = 1): number {
    if (this.pending < min) return 0;
    const s = Math.min(3600, Math.floor(this.pending));
    this.pending -= s;
    return s;
  }
}
